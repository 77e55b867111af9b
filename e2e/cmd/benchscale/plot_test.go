package main

import (
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
)

type svgDoc struct {
	Groups []struct {
		Controller string `xml:"data-controller,attr"`
		Polyline   struct {
			Points string `xml:"points,attr"`
		} `xml:"polyline"`
		Circles []struct {
			CY    float64 `xml:"cy,attr"`
			Title string  `xml:"title"`
		} `xml:"circle"`
	} `xml:"g"`
}

func TestPlotDrawsOneLinePerControllerThroughTheP50s(t *testing.T) {
	runs := []summary{
		sampleRun("sluice", 10, 33), sampleRun("sluice", 50, 36), sampleRun("sluice", 200, 45),
		sampleRun("flagger", 10, 80), sampleRun("flagger", 50, 120),
		{Controller: "flagger", N: 200, ScheduleSeconds: 30}, // nothing finished: no point
	}
	svg := plot(runs)
	var doc svgDoc
	if err := xml.Unmarshal([]byte(svg), &doc); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, svg)
	}
	points := map[string][]string{}
	cys := map[string][]float64{}
	for _, g := range doc.Groups {
		if g.Controller == "" {
			continue
		}
		points[g.Controller] = strings.Fields(g.Polyline.Points)
		for _, c := range g.Circles {
			cys[g.Controller] = append(cys[g.Controller], c.CY)
		}
	}
	if len(points["sluice"]) != 3 || len(points["flagger"]) != 2 {
		t.Fatalf("line points = %v, want 3 for sluice and 2 for flagger", points)
	}
	// A longer release is drawn higher (smaller y), and at the same N Flagger's 80 s above
	// Sluice's 33 s.
	s, f := cys["sluice"], cys["flagger"]
	if !(s[0] > s[1] && s[1] > s[2]) || !(f[0] > f[1]) || !(f[0] < s[0]) {
		t.Errorf("p50 markers at y sluice=%v flagger=%v, not ordered by release time", s, f)
	}
	// The x of N=50 lies between those of 10 and 200, on a log scale.
	xs := func(ps []string) []float64 {
		var out []float64
		for _, p := range ps {
			v, _ := strconv.ParseFloat(strings.Split(p, ",")[0], 64)
			out = append(out, v)
		}
		return out
	}
	x := xs(points["sluice"])
	if r := (x[1] - x[0]) / (x[2] - x[0]); r < 0.52 || r > 0.55 {
		t.Errorf("N=50 is %.3f of the way from 10 to 200, want log(5)/log(20) ≈ 0.537", r)
	}
	if !strings.Contains(svg, "schedule (1×)") {
		t.Error("the schedule line is missing")
	}
}

func TestPlotDashesRaisedControlPlaneSeries(t *testing.T) {
	raised := sampleRun("sluice", 200, 45)
	raised.ControlPlaneQPS = 200
	svg := plot([]summary{sampleRun("sluice", 200, 300), raised})
	if !strings.Contains(svg, `data-controller="sluice, control plane 200/s"`) || strings.Count(svg, `stroke-dasharray="6 3"`) != 2 {
		t.Errorf("want a dashed line and legend for the raised control plane's series:\n%s", svg)
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0.3: 0.5, 0.9: 1, 1.1: 2, 2.2: 2.5, 3: 5, 7: 10, 12: 20, 0: 1} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%v) = %v, want %v", raw, got, want)
		}
	}
}
