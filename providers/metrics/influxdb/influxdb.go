package influxdb

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/providers/metrics"
	"github.com/sluice-dev/sluice/providers/metrics/internal/httpapi"
)

const (
	// DefaultTimeout bounds one query when Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
)

// Options configure a Provider. Token comes from a Secret, never flags.
type Options struct {
	// Address is the InfluxDB base URL, e.g. http://influxdb.monitoring:8086.
	Address string
	// Org is the organization name or ID the script runs in (sent as org=).
	Org string
	// Token is an API token that can read the queried buckets.
	Token string
	// Timeout bounds one query (default 10s).
	Timeout time.Duration
}

// Provider is a reusable client; build one per server, org and token, not per check.
type Provider struct {
	client   *http.Client
	endpoint url.URL
	address  string
	org      string
	token    string
	timeout  time.Duration
}

var _ metrics.Provider = (*Provider)(nil)

// New validates o and builds a Provider.
func New(o Options) (*Provider, error) {
	if o.Address == "" {
		return nil, errors.New("influxdb: Address is required")
	}
	base, err := httpapi.ParseAddress(o.Address)
	if err != nil {
		return nil, fmt.Errorf("influxdb: Address: %w", err)
	}
	if o.Org == "" {
		return nil, errors.New("influxdb: Org is required")
	}
	if o.Token == "" {
		return nil, errors.New("influxdb: Token is required")
	}
	switch {
	case o.Timeout == 0:
		o.Timeout = DefaultTimeout
	case o.Timeout < 0:
		return nil, fmt.Errorf("influxdb: Timeout must not be negative, got %s", o.Timeout)
	}
	endpoint := *base.JoinPath("api", "v2", "query")
	endpoint.RawQuery = url.Values{"org": {o.Org}}.Encode()
	return &Provider{
		client:   httpapi.NewClient(),
		endpoint: endpoint,
		address:  base.String(),
		org:      o.Org,
		token:    o.Token,
		timeout:  o.Timeout,
	}, nil
}

// Query runs the Flux script q and returns the _value of its single record.
func (p *Provider) Query(ctx context.Context, q string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint.String(), strings.NewReader(q))
	if err != nil {
		return 0, fmt.Errorf("influxdb %s: build request: %w", p.address, err)
	}
	req.Header.Set("Authorization", "Token "+p.token)
	req.Header.Set("Content-Type", "application/vnd.flux")
	req.Header.Set("Accept", "application/csv")

	status, body, err := p.do(req)
	if err != nil {
		return 0, err
	}
	if status < 200 || status > 299 {
		return 0, p.statusError(status, body)
	}
	records, err := parseCSV(body)
	if err != nil {
		return 0, err
	}
	switch len(records) {
	case 0:
		return 0, fmt.Errorf("influxdb: query returned no records: %w", metrics.ErrNoData)
	case 1:
	default:
		tables := map[string]bool{}
		for _, r := range records {
			tables[r.result+"/"+r.table] = true
		}
		return 0, fmt.Errorf("influxdb: query returned %d records in %d %s; reduce to one, e.g. |> group() |> mean(): %w",
			len(records), len(tables), plural(len(tables), "table", "tables"), metrics.ErrMultipleSeries)
	}
	r := records[0]
	if !r.hasValueColumn {
		return 0, errors.New("influxdb: result has no _value column; keep _value or rename the column to it")
	}
	if r.value == "" {
		return 0, fmt.Errorf("influxdb: _value is null (no points in the range?): %w", metrics.ErrNoData)
	}
	f, err := strconv.ParseFloat(r.value, 64)
	if err != nil {
		return 0, fmt.Errorf("influxdb: _value %q is not a number", r.value)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("influxdb: _value is %v: %w", f, metrics.ErrNoData)
	}
	return f, nil
}

// record is one data row of the answer, reduced to what Query needs.
type record struct {
	result, table  string
	value          string
	hasValueColumn bool
}

// parseCSV reads the answer of /api/v2/query: CSV with or without annotation rows, one header
// row per table schema, then records. An error table (",error,reference") becomes an error.
func parseCSV(body []byte) ([]record, error) {
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	r.ReuseRecord = false

	var (
		records      []record
		header       []string
		defaults     []string
		annotating   bool // the previous row was an annotation
		expectHeader = true
		errorTable   bool // the header is ",error,reference"
	)
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			return records, nil
		}
		if err != nil {
			return nil, fmt.Errorf("influxdb: malformed CSV answer: %w", err)
		}
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		if strings.HasPrefix(row[0], "#") {
			if !annotating {
				defaults = nil // a new annotation block describes a new table
			}
			if row[0] == "#default" {
				defaults = row
			}
			annotating, expectHeader = true, true
			continue
		}
		if expectHeader || isHeader(row) {
			if !annotating {
				defaults = nil
			}
			header, annotating, expectHeader = row, false, false
			errorTable = len(row) >= 2 && row[1] == "error"
			continue
		}
		annotating = false
		cell := func(name string) (string, bool) {
			i := slices.Index(header, name)
			if i < 0 {
				return "", false
			}
			v := ""
			if i < len(row) {
				v = row[i]
			}
			if v == "" && i < len(defaults) {
				v = defaults[i]
			}
			return v, true
		}
		if errorTable {
			msg, _ := cell("error")
			ref, _ := cell("reference")
			if ref != "" {
				return nil, fmt.Errorf("influxdb: query failed: %s (reference %s)", msg, ref)
			}
			return nil, fmt.Errorf("influxdb: query failed: %s", msg)
		}
		var rec record
		rec.result, _ = cell("result")
		rec.table, _ = cell("table")
		rec.value, rec.hasValueColumn = cell("_value")
		records = append(records, rec)
	}
}

// isHeader tells a header row from a record: the encoder always starts a header with the
// annotation column and "result,table" (or "error,reference" for an error table); a record
// has a table number there.
func isHeader(row []string) bool {
	if len(row) >= 3 && row[1] == "result" && row[2] == "table" {
		return true
	}
	return len(row) >= 2 && row[1] == "error" && (len(row) == 2 || row[2] == "reference")
}

// do sends req and reads the whole (capped) body.
func (p *Provider) do(req *http.Request) (int, []byte, error) {
	return httpapi.Do(p.client, req, "influxdb "+p.address, p.timeout)
}

// statusError words a non-2xx answer; the v2 API reports {"code": "…", "message": "…"}.
func (p *Provider) statusError(status int, body []byte) error {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	text := ""
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		text = e.Message
		if e.Code != "" {
			text = e.Code + ": " + e.Message
		}
	}
	if text == "" {
		text = httpapi.Quote(body)
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("influxdb %s: authentication failed (HTTP %d): %s; check the token and that it can read the bucket in org %q",
			p.address, status, text, p.org)
	default:
		return fmt.Errorf("influxdb %s: HTTP %d: %s", p.address, status, text)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
