package providers

// StrictJSON is strictVerdict for the tests of package providers_test: nil if body is strict
// JSON, else the rules it breaks.
func StrictJSON(body []byte) []string { return strictVerdict(body) }
