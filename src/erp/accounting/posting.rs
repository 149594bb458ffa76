//! The accounting services: drafts, posting (balance, period lock, gapless number),
//! reversal, and the posting API other domains call to write their balanced entry in their
//! own transaction. Plain synchronous functions on a transaction.

use rust_decimal::Decimal;
use serde_json::json;

use super::model::{self, BaseLine, LineInput};
use super::store::{self, NewEntry};
use crate::audit::{self, AuditEvent};
use crate::error::{Error, Result};
use crate::reference::Reference;

/// Who posts, in which tenant currency.
pub struct Ctx<'a> {
    pub base_currency: &'a str,
    pub reference: &'a Reference,
    pub actor: &'a str,
    pub user_id: &'a str,
    pub request_id: Option<&'a str>,
}

impl Ctx<'_> {
    fn audit(
        &self,
        tx: &rusqlite::Connection,
        action: &str,
        id: &str,
        changes: serde_json::Value,
    ) -> Result<()> {
        audit::record(
            tx,
            &AuditEvent {
                actor: self.actor,
                action,
                entity: "journal-entries",
                entity_id: Some(id),
                changes,
                request_id: self.request_id,
            },
        )
    }
}

pub fn check_date(date: &str) -> Result<()> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(date, &fmt)
        .map(|_| ())
        .map_err(|_| Error::invalid("date", "must be a date such as 2026-11-27"))
}

fn year_of(date: &str) -> i64 {
    date.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0)
}

/// Accounts must exist and be active; errors name the line.
fn check_accounts(tx: &rusqlite::Connection, lines: &[LineInput]) -> Result<()> {
    let mut errors = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        match store::find_account(tx, &l.account_id)? {
            None => errors.push(crate::error::FieldError::new(
                format!("lines[{i}].account_id"),
                format!("no account {:?}", l.account_id),
            )),
            Some(a) if !a.active => errors.push(crate::error::FieldError::new(
                format!("lines[{i}].account_id"),
                "the account is inactive",
            )),
            Some(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

/// Convert to base, adding the rounding line when foreign lines left a difference.
fn base_lines(
    tx: &rusqlite::Connection,
    ctx: &Ctx<'_>,
    date: &str,
    lines: &[LineInput],
) -> Result<Vec<BaseLine>> {
    check_accounts(tx, lines)?;
    let mut rate_err = None;
    let mut rate_of = |cur: &str| match store::rate_on(tx, cur, ctx.base_currency, date) {
        Ok(r) => r,
        Err(e) => {
            rate_err = Some(e);
            None
        }
    };
    let converted = model::convert(lines, ctx.base_currency, ctx.reference, &mut rate_of);
    if let Some(e) = rate_err {
        return Err(e);
    }
    let mut converted = converted?;
    if converted.rounding != 0 {
        let account_id = store::account_by_key(tx, "rounding")?;
        let (debit, credit) = if converted.rounding > 0 {
            (0, converted.rounding)
        } else {
            (-converted.rounding, 0)
        };
        converted.lines.push(BaseLine {
            account_id,
            debit,
            credit,
            currency: ctx.base_currency.to_owned(),
            amount: debit + credit,
            rate: 10i64.pow(model::RATE_SCALE),
            memo: Some("rounding difference".into()),
        });
    }
    Ok(converted.lines)
}

/// A new draft (refused at create when unbalanced).
pub fn create_draft(
    tx: &rusqlite::Connection,
    ctx: &Ctx<'_>,
    date: &str,
    memo: Option<&str>,
    lines: &[LineInput],
) -> Result<String> {
    check_date(date)?;
    let base = base_lines(tx, ctx, date, lines)?;
    let id = uuid::Uuid::now_v7().to_string();
    store::insert_entry(
        tx,
        &NewEntry {
            id: &id,
            date,
            memo,
            source: "manual",
            source_id: None,
            reversal_of: None,
            owner: ctx.user_id,
        },
    )?;
    store::replace_lines(tx, &id, date, &base)?;
    ctx.audit(
        tx,
        "create",
        &id,
        json!({ "date": [null, date], "memo": [null, memo], "lines": [null, base.len()] }),
    )?;
    Ok(id)
}

/// Change a draft; posted entries are immutable (409).
pub fn update_draft(
    tx: &rusqlite::Connection,
    ctx: &Ctx<'_>,
    id: &str,
    expected: Option<i64>,
    date: Option<&str>,
    memo: Option<Option<&str>>,
    lines: Option<&[LineInput]>,
) -> Result<()> {
    let h = store::find_header(tx, id)?.ok_or(Error::NotFound)?;
    if h.status != "draft" {
        return Err(Error::Conflict(
            "posted entries are immutable; reverse them instead".into(),
        ));
    }
    crate::error::ensure_version(expected, h.version)?;
    let date = date.unwrap_or(&h.date);
    check_date(date)?;
    let memo = memo.unwrap_or(h.memo.as_deref());
    match lines {
        Some(l) => store::replace_lines(tx, id, date, &base_lines(tx, ctx, date, l)?)?,
        None if date != h.date => {
            // Rates depend on the date: reconvert the stored lines.
            let current = store::load_lines(tx, id)?;
            let inputs = to_inputs(&current, ctx);
            store::replace_lines(tx, id, date, &base_lines(tx, ctx, date, &inputs)?)?;
        }
        None => {}
    }
    store::update_draft(tx, id, date, memo)?;
    ctx.audit(
        tx,
        "update",
        id,
        json!({ "date": [h.date, date], "memo": [h.memo, memo] }),
    )
}

fn to_inputs(lines: &[BaseLine], ctx: &Ctx<'_>) -> Vec<LineInput> {
    lines
        .iter()
        .filter(|l| l.memo.as_deref() != Some("rounding difference"))
        .map(|l| {
            let minor = ctx.reference.minor_units(&l.currency).unwrap_or(2);
            let amount = Decimal::new(l.amount, minor);
            let (debit, credit) = if l.debit > 0 {
                (amount, Decimal::ZERO)
            } else {
                (Decimal::ZERO, amount)
            };
            LineInput {
                account_id: l.account_id.clone(),
                debit,
                credit,
                currency: l.currency.clone(),
                memo: l.memo.clone(),
            }
        })
        .collect()
}

/// Post a draft: balanced, accounts active, period open, then the next gapless number.
pub fn post(tx: &rusqlite::Connection, ctx: &Ctx<'_>, id: &str) -> Result<()> {
    let h = store::find_header(tx, id)?.ok_or(Error::NotFound)?;
    if h.status != "draft" {
        return Err(Error::Conflict(format!("entry is already {}", h.status)));
    }
    let lines = store::load_lines(tx, id)?;
    let (d, c): (i128, i128) = lines.iter().fold((0, 0), |(d, c), l| {
        (d + i128::from(l.debit), c + i128::from(l.credit))
    });
    if d != c || lines.len() < 2 {
        return Err(Error::invalid(
            "lines",
            format!("unbalanced: debits {d} ≠ credits {c} (minor units)"),
        ));
    }
    for l in &lines {
        match store::find_account(tx, &l.account_id)? {
            Some(a) if a.active => {}
            _ => {
                return Err(Error::invalid(
                    "lines",
                    format!("account {} is missing or inactive", l.account_id),
                ));
            }
        }
    }
    // The year-end closing entry is the one posting allowed into the year it closes.
    if h.source != "year-end"
        && let Some(period) = store::closed_period_on(tx, &h.date)?
    {
        return Err(Error::Conflict(format!(
            "the period {period} is closed; nothing posts on {}",
            h.date
        )));
    }
    let year = year_of(&h.date);
    let seq = store::next_number(tx, "journal", year)?;
    let number = format!("JE-{year}-{seq:06}");
    store::mark_posted(tx, id, &number, year, seq)?;
    ctx.audit(tx, "post", id, json!({ "number": [null, number] }))
}

/// Post the mirror entry of a posted one and link both.
pub fn reverse(
    tx: &rusqlite::Connection,
    ctx: &Ctx<'_>,
    id: &str,
    date: Option<&str>,
) -> Result<String> {
    let h = store::find_header(tx, id)?.ok_or(Error::NotFound)?;
    if h.status != "posted" {
        return Err(Error::Conflict(
            "only posted entries can be reversed".into(),
        ));
    }
    if h.reversed_by.is_some() {
        return Err(Error::Conflict("entry is already reversed".into()));
    }
    if h.reversal_of.is_some() {
        return Err(Error::Conflict(
            "a reversal cannot be reversed; post a new entry".into(),
        ));
    }
    let date = date.unwrap_or(&h.date);
    check_date(date)?;
    let mirrored: Vec<BaseLine> = store::load_lines(tx, id)?
        .into_iter()
        .map(|l| BaseLine {
            debit: l.credit,
            credit: l.debit,
            ..l
        })
        .collect();
    let new_id = uuid::Uuid::now_v7().to_string();
    let memo = format!("Reversal of {}", h.number.as_deref().unwrap_or(id));
    store::insert_entry(
        tx,
        &NewEntry {
            id: &new_id,
            date,
            memo: Some(&memo),
            source: "reversal",
            source_id: Some(id),
            reversal_of: Some(id),
            owner: ctx.user_id,
        },
    )?;
    store::replace_lines(tx, &new_id, date, &mirrored)?;
    post(tx, ctx, &new_id)?;
    store::set_reversed_by(tx, id, &new_id)?;
    ctx.audit(tx, "reverse", id, json!({ "reversed_by": [null, new_id] }))?;
    Ok(new_id)
}

/// One posting of a document: an account by purpose (`receivable`, `revenue`, …) or id,
/// and a debit or a credit in `currency` (default: base).
pub struct Posting<'a> {
    pub account: &'a str,
    pub debit: Decimal,
    pub credit: Decimal,
    pub currency: Option<&'a str>,
    pub memo: Option<&'a str>,
}

impl<'a> Posting<'a> {
    /// A debit in the base currency.
    pub fn debit(account: &'a str, amount: Decimal) -> Self {
        Posting {
            account,
            debit: amount,
            credit: Decimal::ZERO,
            currency: None,
            memo: None,
        }
    }

    /// A credit in the base currency.
    pub fn credit(account: &'a str, amount: Decimal) -> Self {
        Posting {
            account,
            debit: Decimal::ZERO,
            credit: amount,
            currency: None,
            memo: None,
        }
    }

    /// The same posting in another currency (converted at the entry date's rate).
    pub fn in_currency(self, currency: &'a str) -> Self {
        Posting {
            currency: Some(currency),
            ..self
        }
    }
}

/// The posting API: other domains (invoices, payments, deliveries, receipts) call this in
/// their own transaction; it writes a balanced, numbered, posted entry or fails.
pub fn post_document(
    tx: &rusqlite::Connection,
    ctx: &Ctx<'_>,
    date: &str,
    memo: &str,
    source: &str,
    source_id: &str,
    postings: &[Posting<'_>],
) -> Result<String> {
    check_date(date)?;
    let mut lines = Vec::with_capacity(postings.len());
    for p in postings
        .iter()
        .filter(|p| !(p.debit.is_zero() && p.credit.is_zero()))
    {
        let account_id = match store::find_account(tx, p.account)? {
            Some(_) => p.account.to_owned(),
            None => store::account_by_key(tx, p.account)?,
        };
        lines.push(LineInput {
            account_id,
            debit: p.debit,
            credit: p.credit,
            currency: p.currency.unwrap_or(ctx.base_currency).to_owned(),
            memo: p.memo.map(str::to_owned),
        });
    }
    let base = base_lines(tx, ctx, date, &lines)?;
    let id = uuid::Uuid::now_v7().to_string();
    store::insert_entry(
        tx,
        &NewEntry {
            id: &id,
            date,
            memo: Some(memo),
            source,
            source_id: Some(source_id),
            reversal_of: None,
            owner: ctx.user_id,
        },
    )?;
    store::replace_lines(tx, &id, date, &base)?;
    ctx.audit(
        tx,
        "create",
        &id,
        json!({ "source": [null, source], "source_id": [null, source_id] }),
    )?;
    post(tx, ctx, &id)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::erp::accounting::reports;
    use proptest::prelude::*;

    const ACCOUNTS: [&str; 8] = [
        "acc-1000", "acc-1100", "acc-1200", "acc-2000", "acc-3000", "acc-4000", "acc-5000",
        "acc-6000",
    ];

    fn setup() -> (rusqlite::Connection, Reference) {
        let mut p = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate_platform(&mut p).unwrap();
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::schema::migrate_tenant(&mut c).unwrap();
        (c, Reference::load(&p).unwrap())
    }

    fn ctx(r: &Reference) -> Ctx<'_> {
        Ctx {
            base_currency: "EUR",
            reference: r,
            actor: "test",
            user_id: "u",
            request_id: None,
        }
    }

    /// Random lines (account, amount in cents, debit?) plus one line that balances them.
    fn balanced() -> impl Strategy<Value = Vec<LineInput>> {
        prop::collection::vec((0..ACCOUNTS.len(), 1i64..10_000_000, any::<bool>()), 1..8).prop_map(
            |raw| {
                let mut lines: Vec<LineInput> = raw
                    .iter()
                    .map(|&(a, cents, debit)| {
                        let amt = Decimal::new(cents, 2);
                        let (d, c) = if debit {
                            (amt, Decimal::ZERO)
                        } else {
                            (Decimal::ZERO, amt)
                        };
                        LineInput {
                            account_id: ACCOUNTS[a].into(),
                            debit: d,
                            credit: c,
                            currency: "EUR".into(),
                            memo: None,
                        }
                    })
                    .collect();
                let net: Decimal = lines.iter().map(|l| l.debit - l.credit).sum();
                let fix = if net.is_zero() {
                    Decimal::new(1, 2)
                } else {
                    net.abs()
                };
                if net.is_zero() {
                    // Keep it non-trivial: one more pair of opposite lines.
                    lines.push(LineInput {
                        account_id: ACCOUNTS[0].into(),
                        debit: fix,
                        credit: Decimal::ZERO,
                        currency: "EUR".into(),
                        memo: None,
                    });
                    lines.push(LineInput {
                        account_id: ACCOUNTS[1].into(),
                        debit: Decimal::ZERO,
                        credit: fix,
                        currency: "EUR".into(),
                        memo: None,
                    });
                } else if net.is_sign_positive() {
                    lines.push(LineInput {
                        account_id: ACCOUNTS[1].into(),
                        debit: Decimal::ZERO,
                        credit: fix,
                        currency: "EUR".into(),
                        memo: None,
                    });
                } else {
                    lines.push(LineInput {
                        account_id: ACCOUNTS[1].into(),
                        debit: fix,
                        credit: Decimal::ZERO,
                        currency: "EUR".into(),
                        memo: None,
                    });
                }
                lines
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn balanced_entries_keep_the_books_balanced(entries in prop::collection::vec(balanced(), 1..6)) {
            let (c, r) = setup();
            for lines in &entries {
                let id = create_draft(&c, &ctx(&r), "2026-06-15", None, lines).unwrap();
                post(&c, &ctx(&r), &id).unwrap();
            }
            let tb = reports::trial_balance(&c, "2026-12-31", 2).unwrap();
            prop_assert_eq!(&tb["total_debit"], &tb["total_credit"]);
            let bs = reports::balance_sheet(&c, "2026-12-31", 2).unwrap();
            prop_assert_eq!(&bs["balanced"], &serde_json::json!(true));
            let n: i64 = c.query_row("SELECT count(*) FROM journal_entries WHERE status = 'posted'", [], |r| r.get(0)).unwrap();
            prop_assert_eq!(n, entries.len() as i64);
        }

        #[test]
        fn unbalanced_entries_are_always_refused(mut lines in balanced(), cents in 1i64..100_000, which in 0usize..8) {
            let (c, r) = setup();
            let i = which % lines.len();
            let delta = Decimal::new(cents, 2);
            if lines[i].debit.is_zero() { lines[i].credit += delta } else { lines[i].debit += delta }
            let e = create_draft(&c, &ctx(&r), "2026-06-15", None, &lines).unwrap_err();
            prop_assert_eq!(e.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
            let n: i64 = c.query_row("SELECT count(*) FROM journal_lines", [], |r| r.get(0)).unwrap();
            prop_assert_eq!(n, 0);
        }
    }

    #[test]
    fn numbers_are_gapless_per_year_and_a_failed_post_gives_its_number_back() {
        let (c, r) = setup();
        let lines = |amt: &str| {
            vec![
                LineInput {
                    account_id: "acc-1000".into(),
                    debit: amt.parse().unwrap(),
                    credit: Decimal::ZERO,
                    currency: "EUR".into(),
                    memo: None,
                },
                LineInput {
                    account_id: "acc-3000".into(),
                    debit: Decimal::ZERO,
                    credit: amt.parse().unwrap(),
                    currency: "EUR".into(),
                    memo: None,
                },
            ]
        };
        let mut numbers = Vec::new();
        for (i, date) in ["2026-01-02", "2026-03-04", "2027-01-01", "2026-12-31"]
            .iter()
            .enumerate()
        {
            let id =
                create_draft(&c, &ctx(&r), date, None, &lines(&format!("{}.00", i + 1))).unwrap();
            // A failing post inside a savepoint must not consume a number.
            let sp = c.unchecked_transaction().unwrap();
            store::next_number(&sp, "journal", 2026).unwrap();
            sp.rollback().unwrap();
            post(&c, &ctx(&r), &id).unwrap();
            numbers.push(
                store::find_header(&c, &id)
                    .unwrap()
                    .unwrap()
                    .number
                    .unwrap(),
            );
        }
        assert_eq!(
            numbers,
            [
                "JE-2026-000001",
                "JE-2026-000002",
                "JE-2027-000001",
                "JE-2026-000003"
            ]
        );
    }

    #[test]
    fn a_closed_period_refuses_postings_and_reversal_mirrors() {
        let (c, r) = setup();
        let l = vec![
            LineInput {
                account_id: "acc-1000".into(),
                debit: Decimal::new(500, 2),
                credit: Decimal::ZERO,
                currency: "EUR".into(),
                memo: None,
            },
            LineInput {
                account_id: "acc-4000".into(),
                debit: Decimal::ZERO,
                credit: Decimal::new(500, 2),
                currency: "EUR".into(),
                memo: None,
            },
        ];
        let id = create_draft(&c, &ctx(&r), "2026-05-10", None, &l).unwrap();
        post(&c, &ctx(&r), &id).unwrap();
        let rev = reverse(&c, &ctx(&r), &id, Some("2026-05-11")).unwrap();
        let tb = reports::trial_balance(&c, "2026-12-31", 2).unwrap();
        assert!(
            tb["lines"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["balance"] == "0.00"),
            "{tb}"
        );
        assert!(reverse(&c, &ctx(&r), &id, None).is_err(), "twice");
        assert!(reverse(&c, &ctx(&r), &rev, None).is_err(), "a reversal");
        crate::erp::accounting::periods::close(&c, &ctx(&r), "2026-05", 2).unwrap();
        let id2 = create_draft(&c, &ctx(&r), "2026-05-20", None, &l).unwrap();
        assert_eq!(
            post(&c, &ctx(&r), &id2).unwrap_err().status(),
            axum::http::StatusCode::CONFLICT
        );
    }
}
