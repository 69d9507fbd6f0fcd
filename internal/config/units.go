package config

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// parseDuration reads a Go duration such as "30s" or "1m30s". A bare number
// is refused (is "30" seconds or milliseconds?), except "0", which means the
// same in every unit.
func parseDuration(s string) (Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return 0, errors.New("a duration needs a unit: use a unit, e.g. 30s")
	}
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("a duration must not be negative")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("not a duration: write a number with a unit (ns, us, ms, s, m, h), e.g. 30s or 1m30s")
	}
	return Duration(d), nil
}

// parseSize reads a byte count: a plain integer, or an integer followed by
// KiB, MiB, GiB (powers of 1024) or KB, MB, GB (powers of 1000).
func parseSize(s string) (Size, error) {
	// The suffixes are matched as written: a lower-case "mb" could mean bits.
	units := [...]struct {
		suffix string
		factor int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	}
	num, factor := s, int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, factor = n, u.factor
			break
		}
	}
	if strings.HasPrefix(num, "-") {
		return 0, errors.New("a size must not be negative")
	}
	if num == "" || strings.Trim(num, "0123456789") != "" {
		return 0, errors.New("not a size: write bytes as an integer, or an integer with KiB, MiB, GiB, KB, MB or GB, e.g. 1MiB")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/factor {
		return 0, errors.New("size too large")
	}
	return Size(n * factor), nil
}
