package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on every Linux
// architecture Go runs this on.
const clockTicks = 100

// cpuSeconds is the user plus system CPU time process pid has used, from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// running reports whether process pid is alive: it has a /proc entry and is neither a zombie
// nor dead (field 3 of /proc/PID/stat).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && statRunning(b)
}

func statRunning(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(stat[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat line. The command
// name (field 2) is in parentheses and may itself hold spaces or ')', so fields are counted
// from the last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat %q: no ')'", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat %q: %d fields after the name", stat, len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc stat: %w", err)
		}
		ticks += v
	}
	return float64(ticks) / clockTicks, nil
}

// peakRSSMiB is the process's peak resident set size (VmHWM) in MiB, from /proc/PID/status.
func peakRSSMiB(pid int) (float64, error) { return statusMiB(pid, "VmHWM") }

// rssMiB is the process's resident set size now (VmRSS) in MiB.
func rssMiB(pid int) (float64, error) { return statusMiB(pid, "VmRSS") }

func statusMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, field)
}

func parseVmHWM(status []byte) (float64, error) { return parseStatusKB(status, "VmHWM") }

// parseStatusKB reads a "Field:  N kB" line of /proc/PID/status, in MiB.
func parseStatusKB(status []byte, field string) (float64, error) {
	for line := range strings.Lines(string(status)) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parse %s %q", field, strings.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", field, err)
		}
		return float64(kb) / 1024, nil
	}
	return 0, fmt.Errorf("no %s in /proc status", field)
}

// loadAverage is the 1-minute load average (how busy the shared machine was).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
