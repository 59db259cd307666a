"""Collections against SQLite and PostgreSQL: real loans booked, disbursed and left unpaid.

Every test books 1200 at 12% a year, 3 monthly annuity installments from 2025-01-15 (the
figures of test_loan_lifecycle, monthly rate 1%):

    #1 2025-02-15: principal 396.03, interest 12.00 (408.03)
    #2 2025-03-15: principal 399.99, interest  8.04 (408.03)
    #3 2025-04-15: principal 403.98, interest  4.04 (408.02)

and leaves #1 unpaid, so the loan is 1 day past due on 2025-02-16 and 14 on 2025-03-01
(DPD counts from the day after the due date). A day is closed as the close does it: interest
accrued through the day, loan_delinquency refreshed, then collections' daily step. The daily
step works on the whole book, so every test has a database of its own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilend.collections import actions, arrangements, service
from mobilend.collections.conduct import ConductViolation
from mobilend.collections.models import CollectionAction, CollectionCase, PromiseRecord
from mobilend.core.errors import Conflict, ValidationFailed
from mobilend.ledger.accounts import Account
from mobilend.loans import service as loans
from mobilend.loans.models import Loan
from mobilend.loans.schemas import LoanIn, ProductConfig, ProductIn
from mobilend.origination.pii import PiiCipher
from mobilend.servicing.models import LoanDelinquency
from mobilend.servicing.policy import ServicingPolicy
from mobilend.servicing.status import refresh_delinquency
from tests.integration.helpers import Db, check_loan_consistent

D = Decimal
SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
START = date(2025, 1, 15)
CIPHER = PiiCipher({"k1": b"k" * 32}, "k1", b"i" * 32)
pytestmark = pytest.mark.integration


def _product(db: Db, **policy: object) -> str:
    code = f"C{uuid.uuid4().hex[:10]}"
    config = ProductConfig(servicing_policy=ServicingPolicy(**policy))  # type: ignore[arg-type]
    db(lambda s: loans.create_product(s, ProductIn(code=code, name="Phone loan", config=config)))
    return code


def _overdue_loan(db: Db, code: str) -> int:
    """Booked and disbursed on 2025-01-15; nothing is ever paid unless a test pays."""
    loan = db(
        lambda s: loans.create_loan(
            s, LoanIn(product_code=code, principal=D("1200"), periods=3, start_date=START)
        )
    )
    db(lambda s: loans.disburse(s, loan_id=loan.id, value_date=START))
    return loan.id


def _close(db: Db, day: date) -> dict[str, int]:
    """The close of `day`: accrual, delinquency, then collections (as servicing.close runs)."""

    def run(s: Session) -> dict[str, int]:
        for loan_id in s.scalars(select(Loan.id).where(Loan.status == "active")).all():
            loans.accrue(s, loan_id=loan_id, through=day)
        refresh_delinquency(s, business_date=day)
        return service.daily(
            s, business_date=day, now=datetime.combine(day, datetime.max.time(), SH)
        )

    return db(run)


def _case(db: Db, loan_id: int) -> CollectionCase:
    case = db(lambda s: service.open_case_of(s, loan_id))
    assert case is not None
    return case


def _pay(db: Db, loan_id: int, amount: str, on: date) -> None:
    db(lambda s: loans.repay(s, loan_id=loan_id, amount=D(amount), value_date=on, business_date=on))


# ---------------------------------------------------------------- conduct rules on actions


def test_actions_refused_by_the_conduct_rules_name_the_rule(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    loan_id = _overdue_loan(db, _product(db, max_contacts_per_day=3))
    counts = _close(db, date(2025, 3, 1))
    assert counts["opened"] == 1
    case = _case(db, loan_id)
    # DPD 14: bucket M1 (1-30). Exposure 1200.00 + interest 12.00 (#1) + 8.04 x 14/28 = 4.02
    # (#2) = 1216.02; provision PD 0.20 x LGD 0.65 x 1216.02 = 158.0826 -> 158.08 < 500: low.
    assert (case.queue, case.status, case.dpd_at_open) == ("M1-low", "open", 14)
    row = db(lambda s: s.get(LoanDelinquency, loan_id))
    assert (row.exposure, row.provision) == (D("1216.02"), D("158.08"))
    agent = db(
        lambda s: service.register_agent(
            s, name="li", role="agent", queues_worked=["M1-low"], capacity=10
        )
    )
    phone = db(
        lambda s: actions.add_contact(
            s, loan_id=loan_id, relation="borrower", kind="phone", value="13912345678",
            timezone="Asia/Shanghai", cipher=CIPHER, business_date=date(2025, 3, 1),
        )
    )  # fmt: skip
    abroad = db(
        lambda s: actions.add_contact(
            s, loan_id=loan_id, relation="borrower", kind="phone", value="+1 212 555 0123",
            timezone="America/New_York", cipher=CIPHER, business_date=date(2025, 3, 1),
        )
    )  # fmt: skip
    assert phone.masked == "139****5678"
    now = datetime(2025, 3, 3, 23, 59, tzinfo=SH)

    def call(at: datetime, **to: object) -> CollectionAction:
        args = {"contact_id": phone.id, **to}
        return db(
            lambda s: actions.record_action(
                s, case_id=case.id, agent_id=agent.id, channel="call", at=at, now=now,
                outcome="no_answer", **args,  # type: ignore[arg-type]
            )
        )  # fmt: skip

    def refused(at: datetime, **to: object) -> ConductViolation:
        with pytest.raises(ConductViolation) as caught:
            call(at, **to)
        assert caught.value.status == 422
        return caught.value

    late = refused(datetime(2025, 3, 1, 22, 30, tzinfo=SH))
    assert (late.rule, late.field) == ("quiet-hours", "at")
    assert "22:30 in Asia/Shanghai" in late.detail
    early = refused(datetime(2025, 3, 2, 7, 59, tzinfo=SH))
    assert (early.rule, early.field) == ("quiet-hours", "at")
    # The contact's own zone: 11:30 on 2 March in Shanghai is 22:30 on 1 March in New York.
    ny = refused(datetime(2025, 3, 1, 22, 30, tzinfo=NY), contact_id=abroad.id)
    assert ny.rule == "quiet-hours" and "America/New_York" in ny.detail
    assert datetime(2025, 3, 1, 22, 30, tzinfo=NY).astimezone(SH).hour == 11

    # The product allows 3 attempts a day to one contact: the 4th is refused; the next
    # Shanghai day starts afresh. A refused attempt is not an attempt made.
    for hour in (9, 10, 11):
        call(datetime(2025, 3, 2, hour, 0, tzinfo=SH))
    fourth = refused(datetime(2025, 3, 2, 12, 0, tzinfo=SH))
    assert (fourth.rule, fourth.field) == ("daily-limit", "contact_point")
    assert "3 attempts" in fourth.detail and "the limit is 3" in fourth.detail
    call(datetime(2025, 3, 3, 8, 0, tzinfo=SH))

    # A number that is none of the loan's contacts is an unrelated third party.
    stranger = actions.contact_point_of(CIPHER, "phone", "13700000000")
    third = refused(datetime(2025, 3, 2, 15, 0, tzinfo=SH), contact_id=None, contact_point=stranger)
    assert (third.rule, third.field) == ("no-third-party", "relation")
    # ... and the borrower's own number given by value resolves to the registered contact.
    own = actions.contact_point_of(CIPHER, "phone", "139 1234 5678")
    made = call(datetime(2025, 3, 3, 9, 0, tzinfo=SH), contact_id=None, contact_point=own)
    assert made.relation == "borrower" and made.contact_id == phone.id

    # A third party cannot be registered as a contact either.
    with pytest.raises(ValidationFailed) as caught:
        db(
            lambda s: actions.add_contact(
                s, loan_id=loan_id, relation="third_party", kind="phone", value="13700000000",
                timezone="Asia/Shanghai", cipher=CIPHER, business_date=date(2025, 3, 1),
            )
        )  # fmt: skip
    assert caught.value.rule == "no-third-party"
    stored = db(
        lambda s: s.scalar(
            select(func.count())
            .select_from(CollectionAction)
            .where(CollectionAction.case_id == case.id)
        )
    )
    assert stored == 5  # 3 on 2 March, 2 on 3 March; none of the six refused attempts


def test_emergency_contact_only_to_locate_and_once_consented(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    loan_id = _overdue_loan(db, _product(db))
    _close(db, date(2025, 3, 1))
    case = _case(db, loan_id)
    agent = db(
        lambda s: service.register_agent(
            s, name="wang", role="agent", queues_worked=["M1-low"], capacity=5
        )
    )
    consented = datetime(2025, 3, 1, 10, 0, tzinfo=SH)
    spouse = db(
        lambda s: actions.add_contact(
            s, loan_id=loan_id, relation="emergency_contact", relationship="spouse",
            kind="phone", value="13800001111", timezone="Asia/Shanghai",
            consented_at=consented, cipher=CIPHER, business_date=date(2025, 3, 1),
        )
    )  # fmt: skip
    now = datetime(2025, 3, 2, 20, 0, tzinfo=SH)

    def call(at: datetime, purpose: str) -> CollectionAction:
        return db(
            lambda s: actions.record_action(
                s, case_id=case.id, agent_id=agent.id, channel="call", at=at, now=now,
                outcome="answered", contact_id=spouse.id, purpose=purpose,
            )
        )  # fmt: skip

    with pytest.raises(ConductViolation) as caught:
        call(datetime(2025, 3, 2, 10, 0, tzinfo=SH), "collect")
    assert (caught.value.rule, caught.value.field) == ("locate-only", "purpose")
    with pytest.raises(ConductViolation) as caught:
        call(datetime(2025, 3, 1, 9, 0, tzinfo=SH), "locate")  # before the consent
    assert caught.value.rule == "contact-consent"
    assert call(datetime(2025, 3, 2, 10, 0, tzinfo=SH), "locate").relation == "emergency_contact"


# ---------------------------------------------------------------- promises to pay


def test_promises_kept_and_broken(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    code = _product(db)
    kept_loan, broken_loan = _overdue_loan(db, code), _overdue_loan(db, code)
    assert _close(db, date(2025, 3, 1))["opened"] == 2
    for name, queue in (("zhao", "M1-low"), ("qian", "M1-high")):
        db(
            lambda s, n=name, q=queue: service.register_agent(
                s, name=n, role="agent", queues_worked=[q], capacity=5
            )
        )
    assert db(lambda s: service.assign_cases(s, business_date=date(2025, 3, 1))) == 2
    kept_case, broken_case = _case(db, kept_loan), _case(db, broken_loan)
    first = db(
        lambda s: arrangements.make_promise(
            s, case_id=kept_case.id, amount=D("408.03"), due_date=date(2025, 3, 5),
            business_date=date(2025, 3, 1),
        )
    )  # fmt: skip
    second = db(
        lambda s: arrangements.make_promise(
            s, case_id=broken_case.id, amount=D("300.00"), due_date=date(2025, 3, 3),
            business_date=date(2025, 3, 1),
        )
    )  # fmt: skip
    assert _case(db, kept_loan).status == "promised"
    with pytest.raises(Conflict) as caught:  # one open promise per case
        db(
            lambda s: arrangements.make_promise(
                s, case_id=kept_case.id, amount=D("1"), due_date=date(2025, 3, 4),
                business_date=date(2025, 3, 1),
            )
        )  # fmt: skip
    assert caught.value.rule == "open-promise"

    _pay(db, broken_loan, "100.00", date(2025, 3, 2))  # 100 of the 300 promised
    counts = _close(db, date(2025, 3, 3))  # the promised day itself: still open
    assert (counts["promises_kept"], counts["promises_broken"]) == (0, 0)

    _pay(db, kept_loan, "408.03", date(2025, 3, 4))  # #1 in full, before 03-05
    counts = _close(db, date(2025, 3, 4))
    # 408.03 covers the promise of 408.03: kept on 03-04. 300 promised for 03-03 and only
    # 100.00 paid by then: broken, and that case moves to M1-high, to the agent working it.
    assert counts["promises_kept"] == 1 and counts["promises_broken"] == 1
    promises = db(lambda s: {p.id: p for p in s.scalars(select(PromiseRecord))})
    assert (promises[first.id].status, promises[first.id].resolved_on) == (
        "kept",
        date(2025, 3, 4),
    )
    assert (promises[second.id].status, promises[second.id].paid) == ("broken", D("100.00"))
    # The kept loan is current again (#2 falls due on 03-15): its case closes as cured.
    assert counts["closed"] == 1
    closed = db(lambda s: s.get(CollectionCase, kept_case.id))
    assert (closed.status, closed.close_reason) == ("closed", "cured")
    requeued = _case(db, broken_loan)
    assert (requeued.queue, requeued.status, requeued.broken_promises) == ("M1-high", "open", 1)
    qian = db(lambda s: next(a for a in service.agent_loads(s) if "M1-high" in a.queues))
    assert requeued.agent_id == qian.id


# ---------------------------------------------------------------- restructuring


def test_restructuring_extends_the_term_with_hand_worked_figures(isolated_db_url: str) -> None:
    """On R = 2025-03-01, #1 unpaid, 3 more months.

    Interest accrued through R: #1 12.00 (due), #2 8.04 x 14 / 28 days = 4.02; arrears 16.02
    stay due on R. Principal 1200.00 (no principal paid) is re-amortized from R over
    3 replaced + 3 extra = 6 months at 1%:
      A = 1200 x 0.01 / (1 - 1.01^-6) = 207.0580 -> 207.06
      04-01 interest 12.00,                principal 195.06, balance 1004.94
      05-01 interest 1004.94 x 1% = 10.05, principal 197.01, balance 807.93
      06-01 interest  8.0793 ->  8.08,     principal 198.98, balance 608.95
      07-01 interest  6.0895 ->  6.09,     principal 200.97, balance 407.98
      08-01 interest  4.0798 ->  4.08,     principal 202.98, balance 205.00
      09-01 interest  2.05,                principal 205.00 (total 207.05)
    """
    db = Db(isolated_db_url)
    loan_id = _overdue_loan(db, _product(db))
    r = date(2025, 3, 1)
    _close(db, r)
    case = _case(db, loan_id)

    for level, rule in (("200.00", "min-installment-share"), ("205.00", "amortizes")):
        # 200 < 0.50 x 408.03 = 204.015. 205 a month leaves a last installment of
        # 215.50 + 2.16 = 217.66 > 205 (balances 1007.00, 812.07, 615.19, 416.34, 215.50).
        with pytest.raises(ValidationFailed) as refused:
            db(
                lambda s, v=level: arrangements.offer_restructuring(
                    s, case_id=case.id, business_date=r, extension_months=3,
                    new_installment=D(v),
                )
            )  # fmt: skip
        assert (refused.value.field, refused.value.rule) == ("new_installment", rule)

    offer = db(
        lambda s: arrangements.offer_restructuring(
            s, case_id=case.id, business_date=r, extension_months=3
        )
    )
    assert (offer.status, offer.periods, offer.arrears) == ("offered", 6, D("16.02"))
    expected = [
        (date(2025, 4, 1), D("195.06"), D("12.00")),
        (date(2025, 5, 1), D("197.01"), D("10.05")),
        (date(2025, 6, 1), D("198.98"), D("8.08")),
        (date(2025, 7, 1), D("200.97"), D("6.09")),
        (date(2025, 8, 1), D("202.98"), D("4.08")),
        (date(2025, 9, 1), D("205.00"), D("2.05")),
    ]
    assert [
        (date.fromisoformat(i["due_date"]), D(i["principal"]), D(i["interest"]))
        for i in offer.schedule
    ] == expected
    # The offer changed nothing: the loan still has its 3 installments, nothing accrued past
    # the close.
    before = db(lambda s: check_loan_consistent(s, loan_id))
    assert db(lambda s: len(loans.get_loan(s, loan_id).installments)) == 3

    done = db(
        lambda s: arrangements.accept_restructuring(s, restructuring_id=offer.id, business_date=r)
    )
    assert done.status == "accepted" and done.previous_terms is not None
    loan = db(lambda s: loans.get_loan(s, loan_id))
    live = [i for i in loan.installments if not i.cancelled]
    assert all(i.cancelled for i in loan.installments if i.number <= 3)
    arrears, *new = live
    assert (arrears.due_date, arrears.principal, arrears.interest_accrued) == (r, 0, D("16.02"))
    assert [(i.due_date, i.principal, i.interest) for i in new] == expected
    after = db(lambda s: check_loan_consistent(s, loan_id))
    assert after == before  # nothing moved in the ledger
    assert after[Account.PRINCIPAL_RECEIVABLE] == D("1200.00")
    assert after[Account.INTEREST_RECEIVABLE] == D("16.02")

    # Restructured: at least special mention (关注), though the loan is current on R.
    row = db(lambda s: s.get(LoanDelinquency, loan_id))
    assert (row.dpd, row.class_floor, row.loan_class) == (0, "special_mention", "special_mention")

    # The borrower settles the arrears on R and the first new installment on 04-01.
    _pay(db, loan_id, "16.02", r)
    db(lambda s: loans.accrue(s, loan_id=loan_id, through=date(2025, 4, 1)))
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.INTEREST_RECEIVABLE] == D("12.00")  # 04-01's interest, fully accrued
    _pay(db, loan_id, "207.06", date(2025, 4, 1))
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("1004.94")
    assert bal[Account.INTEREST_RECEIVABLE] == D("0.00")
    counts = _close(db, date(2025, 4, 2))
    assert counts["closed"] == 1  # current: the case is closed as cured
    row = db(lambda s: s.get(LoanDelinquency, loan_id))
    assert (row.dpd, row.loan_class) == (0, "special_mention")  # the floor stays

    # The product allows one restructuring.
    _close(db, date(2025, 5, 10))  # 05-01 unpaid: 9 days past due, a new case
    with pytest.raises(Conflict) as again:
        db(
            lambda s: arrangements.offer_restructuring(
                s, case_id=_case(db, loan_id).id, business_date=date(2025, 5, 10),
                extension_months=1,
            )
        )  # fmt: skip
    assert again.value.rule == "max-restructurings"


def test_reduced_installment(isolated_db_url: str) -> None:
    """210.00 a month for at most 6 months from R = 2025-03-01 on 1200.00 at 1%:
    12.00/198.00 -> 1002.00; 10.02/199.98 -> 802.02; 8.02/201.98 -> 600.04;
    6.00/204.00 -> 396.04; 3.96/206.04 -> 190.00; last 1.90 + 190.00 = 191.90."""
    db = Db(isolated_db_url)
    loan_id = _overdue_loan(db, _product(db))
    r = date(2025, 3, 1)
    _close(db, r)
    case = _case(db, loan_id)
    offer = db(
        lambda s: arrangements.offer_restructuring(
            s, case_id=case.id, business_date=r, extension_months=3, new_installment=D("210.00")
        )
    )
    db(lambda s: arrangements.accept_restructuring(s, restructuring_id=offer.id, business_date=r))
    loan = db(lambda s: loans.get_loan(s, loan_id))
    new = [i for i in loan.installments if not i.cancelled and i.principal > 0]
    assert [(i.principal, i.interest) for i in new] == [
        (D("198.00"), D("12.00")),
        (D("199.98"), D("10.02")),
        (D("201.98"), D("8.02")),
        (D("204.00"), D("6.00")),
        (D("206.04"), D("3.96")),
        (D("190.00"), D("1.90")),
    ]
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.PRINCIPAL_RECEIVABLE] == D("1200.00")
    assert bal[Account.INTEREST_RECEIVABLE] == D("16.02")  # the arrears, due on R


# ---------------------------------------------------------------- legal and write-off


def test_legal_referral_from_the_products_dpd(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    loan_id = _overdue_loan(db, _product(db, legal_after_dpd=30))
    _close(db, date(2025, 3, 16))  # 29 days past due
    case = _case(db, loan_id)
    with pytest.raises(Conflict) as early:
        db(
            lambda s: arrangements.escalate_to_legal(
                s, case_id=case.id, business_date=date(2025, 3, 16), reason="no contact"
            )
        )
    assert early.value.rule == "legal-after-dpd"
    _close(db, date(2025, 3, 17))  # 30
    record = db(
        lambda s: arrangements.escalate_to_legal(
            s, case_id=case.id, business_date=date(2025, 3, 17), reason="no contact"
        )
    )
    assert record.dpd == 30
    moved = _case(db, loan_id)
    assert (moved.status, moved.queue, moved.agent_id) == ("legal", "legal", None)
    _close(db, date(2025, 4, 20))  # M3+: a legal case stays in the legal queue
    assert _case(db, loan_id).queue == "legal"


def test_write_off_after_the_products_dpd_and_daily_twice(isolated_db_url: str) -> None:
    """write_off_after_dpd 30: DPD 30 on 2025-03-17 keeps the loan; DPD 31 on 03-18 writes
    it off. Receivables then: principal 1200.00, interest 12.00 + 8.04 + #3's 3 of 31 days
    (4.04 x 3 / 31 = 0.39) = 20.43: 1220.43 to write-off expense."""
    db = Db(isolated_db_url)
    code = _product(db, write_off_after_dpd=30)
    loan_id = _overdue_loan(db, code)
    assert _close(db, date(2025, 3, 17))["written_off"] == 0
    assert db(lambda s: loans.get_loan(s, loan_id)).status == "active"

    counts = _close(db, date(2025, 3, 18))
    assert counts["written_off"] == 1 and counts["closed"] == 1
    loan = db(lambda s: loans.get_loan(s, loan_id))
    assert (loan.status, loan.written_off_on) == ("written_off", date(2025, 3, 18))
    bal = db(lambda s: check_loan_consistent(s, loan_id))
    assert bal[Account.WRITE_OFF_EXPENSE] == D("1220.43")
    assert bal[Account.PRINCIPAL_RECEIVABLE] == 0
    case = db(lambda s: s.scalar(select(CollectionCase).where(CollectionCase.loan_id == loan_id)))
    assert (case.status, case.close_reason) == ("closed", "written_off")

    def state(s: Session) -> list[tuple[object, ...]]:
        return [
            (c.id, c.queue, c.status, c.agent_id, c.closed_on)
            for c in s.scalars(select(CollectionCase).order_by(CollectionCase.id))
        ]

    seen = db(state)
    again = db(
        lambda s: service.daily(
            s, business_date=date(2025, 3, 18), now=datetime(2025, 3, 18, 23, tzinfo=UTC)
        )
    )
    assert set(again.values()) == {0}
    assert db(state) == seen
    assert db(lambda s: check_loan_consistent(s, loan_id)) == bal


def test_daily_twice_for_a_date_changes_nothing(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    code = _product(db)
    ids = [_overdue_loan(db, code) for _ in range(3)]
    db(
        lambda s: service.register_agent(
            s, name="sun", role="agent", queues_worked=["M1-low"], capacity=2
        )
    )
    first = _close(db, date(2025, 3, 1))
    assert (first["opened"], first["assigned"]) == (3, 2)  # the third waits: no room
    second = db(
        lambda s: service.daily(
            s, business_date=date(2025, 3, 1), now=datetime(2025, 3, 1, 23, tzinfo=SH)
        )
    )
    assert set(second.values()) == {0}
    assert db(lambda s: len(service.list_cases(s, status="open"))) == len(ids)


# ---------------------------------------------------------------- assignment


def test_assignment_balances_load_and_respects_queues_and_capacity(isolated_db_url: str) -> None:
    db = Db(isolated_db_url)
    code = _product(db)
    for _ in range(4):
        _overdue_loan(db, code)
    _close(db, date(2025, 3, 1))  # no agents yet: 4 cases wait in M1-low
    big = db(
        lambda s: service.register_agent(
            s, name="big", role="agent", queues_worked=["M1-low"], capacity=2
        )
    )
    small = db(
        lambda s: service.register_agent(
            s, name="small", role="agent", queues_worked=["M1-low"], capacity=1
        )
    )
    other = db(
        lambda s: service.register_agent(
            s, name="m2", role="agent", queues_worked=["M2-low"], capacity=9
        )
    )
    # Loads relative to capacity: big 0/2 (lowest id) -> small 0/1 -> big 1/2; small is full.
    assert db(lambda s: service.assign_cases(s, business_date=date(2025, 3, 1))) == 3
    cases = db(lambda s: service.list_cases(s))
    assert [c.agent_id for c in cases] == [big.id, small.id, big.id, None]
    waiting = cases[3]
    for agent, rule in ((small.id, "agent-capacity"), (other.id, "agent-queue")):
        with pytest.raises(Conflict) as refused:
            db(
                lambda s, a=agent: service.assign_case(
                    s, case_id=waiting.id, business_date=date(2025, 3, 1), agent_id=a
                )
            )
        assert refused.value.rule == rule
    with pytest.raises(Conflict) as full:  # big carries 2 of 2
        db(
            lambda s: service.assign_case(
                s, case_id=cases[1].id, business_date=date(2025, 3, 2), agent_id=big.id
            )
        )
    assert full.value.rule == "agent-capacity"
    with pytest.raises(Conflict) as nobody:
        db(lambda s: service.assign_case(s, case_id=waiting.id, business_date=date(2025, 3, 2)))
    assert nobody.value.rule == "no-agent"
    extra = db(
        lambda s: service.register_agent(
            s, name="extra", role="agent", queues_worked=["M1-low", "M1-high"], capacity=5
        )
    )
    moved = db(
        lambda s: service.assign_case(
            s, case_id=cases[1].id, business_date=date(2025, 3, 2), agent_id=extra.id
        )
    )
    assert (moved.agent_id, moved.assigned_on) == (extra.id, date(2025, 3, 2))
    # small has room again (0/1) and beats extra (1/5) for the waiting case.
    last = db(lambda s: service.assign_case(s, case_id=waiting.id, business_date=date(2025, 3, 2)))
    assert last.agent_id == small.id
    summary = db(service.queue_summary)
    assert [(q["queue"], q["cases"], q["unassigned"]) for q in summary] == [("M1-low", 4, 0)]
    assert summary[0]["overdue"] == D("1632.12")  # 4 loans x #1's 408.03 overdue on 03-01
