package cloudwatch

// A minimal CBOR (RFC 8949) codec for the fake CloudWatch server, written against the RFC rather
// than borrowed from the SDK so the test checks the SDK's wire format independently. It covers
// what the Smithy RPC v2 CBOR protocol uses: unsigned and negative integers, byte and text
// strings, arrays and maps (definite and indefinite length), tags, booleans, null/undefined and
// half/single/double floats.

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

// cborTag is a tagged data item; tag 1 holds an epoch-seconds timestamp.
type cborTag struct {
	Num   uint64
	Value any
}

// cborDecode decodes exactly one data item: uint64, int64, []byte, string, []any,
// map[string]any, cborTag, bool, nil or float64.
func cborDecode(p []byte) (any, error) {
	d := &cborDecoder{p: p}
	v, err := d.item()
	if err != nil {
		return nil, err
	}
	if d.off != len(p) {
		return nil, fmt.Errorf("cbor: %d trailing bytes", len(p)-d.off)
	}
	return v, nil
}

var errBreak = errors.New("cbor: break")

type cborDecoder struct {
	p   []byte
	off int
}

func (d *cborDecoder) next(n int) ([]byte, error) {
	if n < 0 || d.off+n > len(d.p) {
		return nil, errors.New("cbor: unexpected end of data")
	}
	b := d.p[d.off : d.off+n]
	d.off += n
	return b, nil
}

// head reads an initial byte and its argument; indefinite is true for additional info 31.
func (d *cborDecoder) head() (major byte, info byte, arg uint64, indefinite bool, err error) {
	b, err := d.next(1)
	if err != nil {
		return 0, 0, 0, false, err
	}
	major, info = b[0]>>5, b[0]&0x1f
	switch {
	case info < 24:
		return major, info, uint64(info), false, nil
	case info <= 27:
		n := 1 << (info - 24)
		raw, err := d.next(n)
		if err != nil {
			return 0, 0, 0, false, err
		}
		for _, c := range raw {
			arg = arg<<8 | uint64(c)
		}
		return major, info, arg, false, nil
	case info == 31:
		return major, info, 0, true, nil
	default:
		return 0, 0, 0, false, fmt.Errorf("cbor: reserved additional info %d", info)
	}
}

func (d *cborDecoder) item() (any, error) {
	major, info, arg, indef, err := d.head()
	if err != nil {
		return nil, err
	}
	switch major {
	case 0:
		return arg, nil
	case 1:
		return -1 - int64(arg), nil
	case 2, 3:
		var b []byte
		if indef {
			for {
				chunk, err := d.item()
				if errors.Is(err, errBreak) {
					break
				}
				if err != nil {
					return nil, err
				}
				switch c := chunk.(type) {
				case []byte:
					b = append(b, c...)
				case string:
					b = append(b, c...)
				}
			}
		} else {
			raw, err := d.next(int(arg))
			if err != nil {
				return nil, err
			}
			b = slices.Clone(raw)
		}
		if major == 3 {
			return string(b), nil
		}
		return b, nil
	case 4:
		list := []any{}
		for i := uint64(0); indef || i < arg; i++ {
			v, err := d.item()
			if indef && errors.Is(err, errBreak) {
				break
			}
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		return list, nil
	case 5:
		m := map[string]any{}
		for i := uint64(0); indef || i < arg; i++ {
			k, err := d.item()
			if indef && errors.Is(err, errBreak) {
				break
			}
			if err != nil {
				return nil, err
			}
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("cbor: map key %v is not a text string", k)
			}
			v, err := d.item()
			if err != nil {
				return nil, err
			}
			m[ks] = v
		}
		return m, nil
	case 6:
		v, err := d.item()
		if err != nil {
			return nil, err
		}
		return cborTag{Num: arg, Value: v}, nil
	default: // 7
		switch info {
		case 20:
			return false, nil
		case 21:
			return true, nil
		case 22, 23:
			return nil, nil
		case 25:
			return halfToFloat(uint16(arg)), nil
		case 26:
			return float64(math.Float32frombits(uint32(arg))), nil
		case 27:
			return math.Float64frombits(arg), nil
		case 31:
			return nil, errBreak
		default:
			return nil, fmt.Errorf("cbor: unsupported simple value %d", info)
		}
	}
}

func halfToFloat(h uint16) float64 {
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	var f float64
	switch exp {
	case 0:
		f = math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			f = math.Inf(1)
		} else {
			f = math.NaN()
		}
	default:
		f = math.Ldexp(mant+1024, exp-25)
	}
	if h&0x8000 != 0 {
		f = -f
	}
	return f
}

// cborEncode encodes v with definite lengths and map keys in sorted order. It accepts the types
// cborDecode returns plus int, []float64, []time.Time and time.Time (as tag 1, epoch seconds).
func cborEncode(v any) []byte {
	var b []byte
	return appendItem(b, v)
}

func appendHead(b []byte, major byte, arg uint64) []byte {
	switch {
	case arg < 24:
		return append(b, major<<5|byte(arg))
	case arg <= math.MaxUint8:
		return append(b, major<<5|24, byte(arg))
	case arg <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, major<<5|25), uint16(arg))
	case arg <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, major<<5|26), uint32(arg))
	default:
		return binary.BigEndian.AppendUint64(append(b, major<<5|27), arg)
	}
}

func appendItem(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, 0xf6)
	case bool:
		if v {
			return append(b, 0xf5)
		}
		return append(b, 0xf4)
	case int:
		if v < 0 {
			return appendHead(b, 1, uint64(-1-v))
		}
		return appendHead(b, 0, uint64(v))
	case int64:
		return appendItem(b, int(v))
	case uint64:
		return appendHead(b, 0, v)
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 0xfb), math.Float64bits(v))
	case string:
		return append(appendHead(b, 3, uint64(len(v))), v...)
	case []byte:
		return append(appendHead(b, 2, uint64(len(v))), v...)
	case time.Time:
		return appendItem(appendHead(b, 6, 1), float64(v.UnixMilli())/1e3)
	case cborTag:
		return appendItem(appendHead(b, 6, v.Num), v.Value)
	case []float64:
		b = appendHead(b, 4, uint64(len(v)))
		for _, f := range v {
			b = appendItem(b, f)
		}
		return b
	case []time.Time:
		b = appendHead(b, 4, uint64(len(v)))
		for _, t := range v {
			b = appendItem(b, t)
		}
		return b
	case []any:
		b = appendHead(b, 4, uint64(len(v)))
		for _, e := range v {
			b = appendItem(b, e)
		}
		return b
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = appendHead(b, 5, uint64(len(v)))
		for _, k := range keys {
			b = appendItem(b, k)
			b = appendItem(b, v[k])
		}
		return b
	default:
		panic(fmt.Sprintf("cborEncode: unsupported type %T", v))
	}
}

func TestCBORRoundTrip(t *testing.T) {
	// RFC 8949 Appendix A examples, decoded.
	for hexIn, want := range map[string]any{
		"00":                         uint64(0),
		"1903e8":                     uint64(1000),
		"20":                         int64(-1),
		"f93c00":                     1.0,
		"f97bff":                     65504.0,
		"fa47c35000":                 100000.0,
		"fb3ff199999999999a":         1.1,
		"f5":                         true,
		"f6":                         nil,
		"6449455446":                 "IETF",
		"7f657374726561646d696e67ff": "streaming",
		"c11a514b67b0":               cborTag{Num: 1, Value: uint64(1363896240)},
	} {
		got, err := cborDecode(mustHex(t, hexIn))
		if err != nil {
			t.Errorf("decode %s: %v", hexIn, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decode %s = %#v, want %#v", hexIn, got, want)
		}
	}
	in := map[string]any{"a": []any{uint64(1), "x", -2.5, true, nil}, "b": map[string]any{"c": []byte{1, 2}}}
	got, err := cborDecode(cborEncode(in))
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Errorf("round trip = %#v, %v; want %#v", got, err, in)
	}
	// Indefinite-length map and array, as the SDK writes them.
	got, err = cborDecode(mustHex(t, "bf61619f0102ff6162f5ff"))
	if want := map[string]any{"a": []any{uint64(1), uint64(2)}, "b": true}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("indefinite = %#v, %v; want %#v", got, err, want)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
