package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPUCountsFromTheLastParenthesis(t *testing.T) {
	// utime 250 and stime 130 ticks; the command name holds ") (" and spaces.
	stat := "4242 (sluice) (x y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 130 0 0 20 0 12 0 100 2000000 5000\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.8 {
		t.Errorf("parseStatCPU = %v, want 3.8 (380 ticks)", got)
	}
	if _, err := parseStatCPU([]byte("4242 (sluice) S 1 2")); err == nil {
		t.Error("a short stat line parsed without error")
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tsluice\nVmPeak:\t 1300000 kB\nVmHWM:\t   76800 kB\nVmRSS:\t   70000 kB\n"
	got, err := parseVmHWM([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if got != 75 {
		t.Errorf("parseVmHWM = %v MiB, want 75", got)
	}
	if _, err := parseVmHWM([]byte("Name:\tx\n")); err == nil {
		t.Error("a status without VmHWM parsed without error")
	}
}

// The readers work on a real process: this one, while it burns CPU (on a busy machine it may
// get little of it, hence the generous deadline).
func TestProcOfThisProcess(t *testing.T) {
	before, err := cpuSeconds(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for deadline := time.Now().Add(20 * time.Second); ; x++ {
		if x%1_000_000 == 0 {
			after, err := cpuSeconds(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			if after-before >= 0.1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("CPU seconds grew by %v in 20 s of spinning, want ≥ 0.1", after-before)
			}
		}
	}
	rss, err := peakRSSMiB(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1 || rss > 4096 {
		t.Errorf("peak RSS = %v MiB, implausible for a test binary", rss)
	}
}

func TestStatRunning(t *testing.T) {
	for stat, want := range map[string]bool{
		"42 (sluice) S 1 42 42 0 -1": true,
		"42 (a ) b) R 1 42 42 0 -1":  true,
		"42 (sluice) Z 1 42 42 0 -1": false,
		"42 (sluice) X 1 42 42 0 -1": false,
		"garbage":                    false,
	} {
		if got := statRunning([]byte(stat)); got != want {
			t.Errorf("statRunning(%q) = %v, want %v", stat, got, want)
		}
	}
	if !running(os.Getpid()) {
		t.Error("this process is not running")
	}
}
