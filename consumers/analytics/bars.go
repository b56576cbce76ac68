package analytics

import (
	"fmt"

	"github.com/socialbridge/bridge/consumers/analytics/store"
)

// The geometry of the bar chart of troubled profiles.
const (
	barPitch  = 26
	barLabelW = 220
	barH      = 16
)

// barChart shows the profiles with the most failures and token expiries, one row each: a
// bar of failures, then one of token expiries.
type barChart struct {
	ID, Title string
	W, H      int
	Rows      []barRow
	Empty     bool
}

type barRow struct {
	Y, TextY                                      float64
	Platform, Profile                             string
	Failed, TokenExpired                          int64
	FailedW, TokenExpiredX, TokenExpiredW, CountX float64
	Title                                         string
}

func newBarChart(id, title string, profiles []store.ProfileTotals) barChart {
	c := barChart{ID: id, Title: title, W: chartW, H: max(1, len(profiles))*barPitch + 8, Empty: len(profiles) == 0}
	var most int64 = 1
	for _, p := range profiles {
		most = max(most, p.Failed+p.TokenExpired)
	}
	scale := float64(chartW-barLabelW-60) / float64(most)
	for i, p := range profiles {
		y := float64(4 + i*barPitch)
		r := barRow{Y: y, TextY: y + barH - 3, Platform: p.Platform, Profile: p.Profile, Failed: p.Failed, TokenExpired: p.TokenExpired,
			FailedW: float64(p.Failed) * scale, TokenExpiredW: float64(p.TokenExpired) * scale,
			Title: fmt.Sprintf("%s / %s: %d failed, %d token expired", p.Platform, p.Profile, p.Failed, p.TokenExpired)}
		r.TokenExpiredX = barLabelW + r.FailedW
		r.CountX = r.TokenExpiredX + r.TokenExpiredW + 6
		c.Rows = append(c.Rows, r)
	}
	return c
}
