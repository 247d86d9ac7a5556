package metrics

import "time"

// Budgets are the values of the budget label of the AWS API budget metrics.
func Budgets() []string { return []string{"describe", "mutate", "rds_describe"} }

// InitBudgets creates the budget series at 0, so that alerts on their rate work from the first scrape.
func (m *Metrics) InitBudgets() {
	if m == nil {
		return
	}
	for _, b := range Budgets() {
		m.budgetWait.WithLabelValues(b)
		m.budgetDeferred.WithLabelValues(b)
	}
}

// BudgetWait records how long one call attempt waited for the API budget; a wait above 0 also counts the
// attempt as deferred.
func (m *Metrics) BudgetWait(budget string, d time.Duration) {
	if m == nil {
		return
	}
	m.budgetWait.WithLabelValues(budget).Observe(seconds(d))
	if d > 0 {
		m.budgetDeferred.WithLabelValues(budget).Inc()
	}
}
