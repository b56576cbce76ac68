// Package chaos holds the chaos run of the consumer groups (chaos_test.go): the three
// groups, two `bridge consume` processes each, on the real broker, under SIGKILLs,
// members leaving and joining, PostgreSQL restarted, the retry action and Slack failing
// and slow; at the end every input record is accounted for. `make test` runs its short
// form, `make chaos-consumers` the long one; see docs/testing.md.
package chaos
