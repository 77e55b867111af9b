// Package newrelic answers Sluice's analysis checks from New Relic with NRQL.
//
// It calls the Insights query API, GET <Address>/v1/accounts/<AccountID>/query?nrql=…, with
// the X-Query-Key header, like Flagger's newrelic provider. See
// https://docs.newrelic.com/docs/apis/insights-apis/query-insights-event-data-api/. New Relic
// now prefers NerdGraph for NRQL; this API still serves it and is what Flagger templates target.
//
// Time range: as in Flagger, a query without its own SINCE clause gets
// " SINCE <Window seconds> seconds ago" appended (Window defaults to 5m), so Flagger NRQL
// templates work unchanged; a query that says SINCE keeps its own range.
//
// Reduction to one number: the answer's "results" must hold exactly one object with exactly
// one value, e.g. {"results":[{"count":42}]} from SELECT count(*), {"result":99.5} from
// SELECT percentage(…) or filter(…) arithmetic, or {"percentiles":{"99":0.41}} from a single
// percentile; that number is the value. A null value or an empty "results" (or an empty list
// such as "events") is metrics.ErrNoData. Several results (SELECT a, b), several values in one
// result (percentile(x, 95, 99), apdex) or several FACETs are metrics.ErrMultipleSeries: name one
// aggregate, and the check reads the number you meant. TIMESERIES answers are refused.
//
// Errors: transport failures and timeouts wrap metrics.ErrUnreachable; HTTP 401/403 say the
// query key was refused; other non-2xx statuses carry the status and the API's "error" text.
// Redirects are not followed, so the query key never travels to another host.
package newrelic
