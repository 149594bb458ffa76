//! Moving-average valuation as integer arithmetic: quantity ×10^6, value in base minor
//! units. An issue takes its proportional share of the value (rounded half-even), and
//! the last unit out takes exactly what is left, so the value never drifts from the sum
//! of the moves.

use crate::erp::accounting::model::mul_div_half_even;
use crate::erp::catalog::QTY_SCALE;

const QTY_ONE: i128 = 10i128.pow(QTY_SCALE);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Valuation {
    pub quantity: i64,
    pub value: i64,
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

impl Valuation {
    /// The average cost of one unit (base minor units), while something is on hand.
    pub fn unit_cost(&self) -> Option<i64> {
        (self.quantity > 0 && self.value >= 0).then(|| {
            clamp(mul_div_half_even(
                i128::from(self.value),
                QTY_ONE,
                i128::from(self.quantity),
            ))
        })
    }

    pub fn receive(self, qty: i64, value: i64) -> Valuation {
        Valuation {
            quantity: self.quantity + qty,
            value: self.value + value,
        }
    }

    /// Take `qty` out; returns the value taken and the valuation after. `last_cost` (the
    /// product's cost field) prices units issued beyond what is on hand (negative stock).
    pub fn issue(self, qty: i64, last_cost: i64) -> (i64, Valuation) {
        let at_cost = |q: i64| {
            clamp(mul_div_half_even(
                i128::from(q),
                i128::from(last_cost),
                QTY_ONE,
            ))
        };
        let taken = if self.quantity <= 0 {
            at_cost(qty)
        } else if qty < self.quantity {
            clamp(mul_div_half_even(
                i128::from(self.value),
                i128::from(qty),
                i128::from(self.quantity),
            ))
        } else {
            // Everything on hand leaves at exactly its value; the rest at the last cost.
            self.value + at_cost(qty - self.quantity)
        };
        (
            taken,
            Valuation {
                quantity: self.quantity - qty,
                value: self.value - taken,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const U: i64 = 1_000_000;

    #[test]
    fn moving_average_follows_receipts() {
        // 10 at 5.00, then 30 at 7.00 → 40 at 6.50.
        let v = Valuation::default()
            .receive(10 * U, 5000)
            .receive(30 * U, 21000);
        assert_eq!(v.unit_cost(), Some(650));
        // Issue 4 → 26.00; 36 left worth 234.00; the average stays 6.50.
        let (taken, v) = v.issue(4 * U, 650);
        assert_eq!((taken, v.value, v.unit_cost()), (2600, 23400, Some(650)));
    }

    #[test]
    fn thirds_round_and_the_last_unit_takes_the_rest() {
        // 3 units worth 10.00: 3.33, 3.33, then exactly 3.34.
        let v = Valuation::default().receive(3 * U, 1000);
        let (a, v) = v.issue(U, 0);
        let (b, v) = v.issue(U, 0);
        let (c, v) = v.issue(U, 0);
        assert_eq!((a, b, c), (333, 334, 333));
        assert_eq!(a + b + c, 1000);
        assert_eq!(
            v,
            Valuation {
                quantity: 0,
                value: 0
            }
        );
    }

    #[test]
    fn negative_stock_is_priced_at_the_last_cost() {
        let v = Valuation::default().receive(U, 500);
        let (taken, v) = v.issue(3 * U, 500);
        assert_eq!((taken, v.quantity, v.value), (1500, -2 * U, -1000));
        assert_eq!(v.unit_cost(), None);
    }

    proptest! {
        /// Whatever the moves, the value is the sum of what went in minus what came out,
        /// and emptying the stock leaves exactly zero value.
        #[test]
        fn value_is_the_sum_of_moves(ops in prop::collection::vec((any::<bool>(), 1i64..50_000_000, 0i64..1_000_000), 1..60)) {
            let mut v = Valuation::default();
            let mut sum = 0i64;
            for (is_in, qty, value) in ops {
                if is_in {
                    v = v.receive(qty, value);
                    sum += value;
                } else if v.quantity > 0 {
                    let q = qty.min(v.quantity);
                    let (taken, after) = v.issue(q, 0);
                    prop_assert!(taken >= 0 && taken <= v.value);
                    sum -= taken;
                    v = after;
                }
                prop_assert_eq!(v.value, sum);
            }
            if v.quantity > 0 {
                let (_, after) = v.issue(v.quantity, 0);
                prop_assert_eq!(after, Valuation { quantity: 0, value: 0 });
            }
        }
    }
}
