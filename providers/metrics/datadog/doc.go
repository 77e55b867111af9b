// Package datadog answers Sluice's analysis checks from Datadog.
//
// It calls the v1 metrics query API, GET <Address>/api/v1/query?from=&to=&query=, with the
// DD-API-KEY and DD-APPLICATION-KEY headers, over the range [now-Window, now] (Window defaults
// to 5m). See https://docs.datadoghq.com/api/latest/metrics/query-timeseries-points/.
//
// Reduction to one number: the query must yield exactly one series (aggregate it in the query,
// e.g. sum:…{…} without "by {…}"); the value is that series' last point whose value is not
// null. No series, or only null points, is metrics.ErrNoData (inconclusive); more than one
// series is metrics.ErrMultipleSeries. Flagger's datadog provider differs on both: it reads the
// first series and ignores the rest (here an error, because checking the wrong series is worse
// than checking none), and it now reads the first (oldest) point of a range ten times the
// interval, because the newest bucket may still be filling. Here the newest non-null point
// of Window is read; for .as_count() ratios over short windows, make sure the window leaves
// complete buckets, or aggregate in the query (e.g. .rollup(sum, 300)).
//
// Errors: transport failures and timeouts wrap metrics.ErrUnreachable; HTTP 401/403 say the keys
// were refused; any other non-2xx status carries the status and the API's "errors" text.
// Redirects are not followed, so the keys never travel to another host.
package datadog
