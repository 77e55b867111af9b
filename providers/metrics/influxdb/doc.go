// Package influxdb answers Sluice's analysis checks from InfluxDB 2.x (OSS or Cloud) with Flux.
//
// It calls POST <Address>/api/v2/query?org=<Org> with the Flux script as the body and the
// headers Authorization: Token <Token>, Content-Type: application/vnd.flux and
// Accept: application/csv. See
// https://docs.influxdata.com/influxdb/v2/query-data/execute-queries/influx-api/.
//
// The answer is CSV, annotated or not (https://docs.influxdata.com/influxdb/v2/reference/syntax/annotated-csv/):
// optional #datatype/#group/#default annotation rows, a header row (",result,table,…,_value,…"),
// then record rows; an empty line and a new header start a table with another schema. A
// #default annotation fills empty cells.
//
// Reduction to one number: the script must end in exactly one record, e.g.
// … |> group() |> mean() or … |> last(); the value is that record's _value (double, long or
// unsignedLong). No record, or a null (empty) _value, NaN or ±Inf, is metrics.ErrNoData; more
// than one record, in one table or several, is metrics.ErrMultipleSeries. (Flagger's influxdb
// provider reads the first record and ignores the rest; here extra records are an error,
// because checking an arbitrary record is worse than checking none.)
//
// Errors: transport failures and timeouts wrap metrics.ErrUnreachable; HTTP 401/403 say the
// token was refused; other non-2xx statuses carry the status and the API's {"code","message"};
// an error table in a 200 answer (",error,reference") carries its message. Redirects are not
// followed, so the token never travels to another host.
package influxdb
