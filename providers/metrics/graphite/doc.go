// Package graphite answers Sluice's analysis checks from Graphite (graphite-web, or any server
// with its render API).
//
// It calls the render API, GET <Address>/render?target=…&from=-5min&format=json, with HTTP basic
// auth when a username is set. See https://graphite.readthedocs.io/en/latest/render_api.html.
//
// Queries come in two forms. A bare target expression, e.g.
// asPercent(sumSeries(app.web.5xx), sumSeries(app.web.requests)), becomes the target parameter.
// A query that starts with "target=" is taken as a render query string, the form Flagger's
// graphite MetricTemplates use (target=…&from=-2min), so those templates work unchanged; runs
// of whitespace from multi-line YAML are collapsed to one space, as Flagger does. Either way
// format=json is forced, and from=-<Window> (default -5min) is added when the query sets no
// from.
//
// Reduction to one number: the target must yield exactly one series; the value is its last
// datapoint whose value is not null (Graphite pads the current, still-filling interval with
// null). No series, or only null datapoints, is metrics.ErrNoData; more than one series is
// metrics.ErrMultipleSeries (Flagger takes the last non-null value across all series; here
// that is an error, because checking an arbitrary series is worse than checking none).
//
// Errors: transport failures and timeouts wrap metrics.ErrUnreachable; HTTP 401/403 say the
// credentials were refused; other non-2xx statuses carry the status and graphite-web's text
// (e.g. "Invalid parameters (…)"). Redirects are not followed.
package graphite
