package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/socialbridge/bridge/config"
)

// devSecret is the codivupload secret of `bridge dev`. It is not a secret: dev mode runs
// on loopback with an in-process Kafka, for trying the bridge out.
const devSecret = "cdv_whsec_dev_only_not_a_secret"

// Settings of dev that differ from the defaults, so that what they do shows within a
// minute: a retry moved to a delay topic comes back in seconds, and a profile alerted
// again after a minute rather than six hours.
var (
	devDelays   = []config.Duration{config.Duration(5 * time.Second), config.Duration(30 * time.Second)}
	devCooldown = config.Duration(time.Minute)
)

// devConfig is the configuration of every part of dev: the ingress with a codivupload
// source, the consumers calling the stand-ins, and analytics on SQLite in dir.
func devConfig(a devAddrs, brokers []string, registryURL string, stand *standIns, dir string) (config.Config, error) {
	cfg := config.Default()
	cfg.HTTP.Listen = a.ingress
	cfg.HTTP.DrainPeriod = 0 // no load balancer to tell: Ctrl-C stops at once
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.Partitions = 1
	cfg.Kafka.ReplicationFactor = 1 // kfake is one broker
	cfg.SchemaRegistry.URL = registryURL
	cfg.Sources = []config.Source{{Name: "codivupload", Provider: "codivupload", Secrets: []string{devSecret}}}

	c := &cfg.Consumers
	c.Retries.Action.URL = stand.RetryAPIURL() + "/v1/posts/{post_id}/retry-failed"
	c.Retries.Delays = devDelays
	c.Alerts.SlackWebhookURL = stand.SlackURL()
	c.Alerts.Cooldown = devCooldown
	c.Analytics.Database = "sqlite:" + filepath.Join(dir, "analytics.db")
	c.Analytics.Listen = a.dashboard
	var err error
	if c.Retries.Member.Listen, err = freePort(a.retries); err != nil {
		return cfg, fmt.Errorf("--retries-listen: %w", err)
	}
	if c.Alerts.Member.Listen, err = freePort(a.alerts); err != nil {
		return cfg, fmt.Errorf("--alerts-listen: %w", err)
	}
	err = cfg.Validate()
	return cfg, err
}
