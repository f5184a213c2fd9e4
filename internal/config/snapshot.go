package config

import (
	"time"

	"github.com/spf13/pflag"
)

// S3 is where snapshots are uploaded (K3s's --etcd-s3-* flags).
type S3 struct {
	Enabled       bool          `json:"enabled"`
	Endpoint      string        `json:"endpoint"`
	EndpointCA    string        `json:"endpointCA,omitempty"`
	SkipSSLVerify bool          `json:"skipSSLVerify,omitempty"`
	Insecure      bool          `json:"insecure,omitempty"` // plain HTTP
	AccessKey     string        `json:"accessKey,omitempty"`
	SecretKey     string        `json:"secretKey,omitempty"`
	Bucket        string        `json:"bucket"`
	Folder        string        `json:"folder,omitempty"`
	Region        string        `json:"region,omitempty"`
	Timeout       time.Duration `json:"timeout,omitempty"`
	Retention     int           `json:"retention,omitempty"`
}

// AddFlags registers the S3 flags with prefix ("etcd-s3" for the server,
// "s3" for `k3ha etcd-snapshot`).
func (s *S3) AddFlags(fs *pflag.FlagSet, prefix string) {
	fs.BoolVar(&s.Enabled, prefix, false, "Upload snapshots to S3 (or restore from it)")
	fs.StringVar(&s.Endpoint, prefix+"-endpoint", "s3.amazonaws.com", "S3 endpoint, host[:port]")
	fs.StringVar(&s.EndpointCA, prefix+"-endpoint-ca", "", "CA bundle file for the S3 endpoint")
	fs.BoolVar(&s.SkipSSLVerify, prefix+"-skip-ssl-verify", false, "Do not verify the S3 endpoint's certificate")
	fs.BoolVar(&s.Insecure, prefix+"-insecure", false, "Talk to S3 over plain HTTP")
	fs.StringVar(&s.AccessKey, prefix+"-access-key", "", "S3 access key (or AWS_ACCESS_KEY_ID)")
	fs.StringVar(&s.SecretKey, prefix+"-secret-key", "", "S3 secret key (or AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&s.Bucket, prefix+"-bucket", "", "S3 bucket")
	fs.StringVar(&s.Folder, prefix+"-folder", "", "Folder in the bucket")
	fs.StringVar(&s.Region, prefix+"-region", "us-east-1", "S3 region")
	fs.DurationVar(&s.Timeout, prefix+"-timeout", 5*time.Minute, "Timeout of one S3 operation")
	fs.IntVar(&s.Retention, prefix+"-retention", 5, "Snapshots of each name to keep on S3")
}

// Snapshots are the server's scheduled snapshot settings (K3s's names).
type Snapshots struct {
	Disable   bool
	Schedule  string
	Retention int
	Dir       string
	Compress  bool
	Name      string
	S3        S3
}

// DefaultSnapshotSchedule is K3s's: twice a day.
const DefaultSnapshotSchedule = "0 */12 * * *"

// AddFlags registers the --etcd-snapshot-* and --etcd-s3-* flags.
func (s *Snapshots) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&s.Disable, "etcd-disable-snapshots", false, "Take no scheduled snapshots")
	fs.StringVar(&s.Schedule, "etcd-snapshot-schedule-cron", DefaultSnapshotSchedule, "When to take scheduled snapshots (cron, 5 fields)")
	fs.IntVar(&s.Retention, "etcd-snapshot-retention", 5, "Verified scheduled snapshots to keep")
	fs.StringVar(&s.Dir, "etcd-snapshot-dir", "", "Where snapshots go (default: <data-dir>/server/db/snapshots)")
	fs.BoolVar(&s.Compress, "etcd-snapshot-compress", false, "Compress snapshots with zstd")
	fs.StringVar(&s.Name, "etcd-snapshot-name", "etcd-snapshot", "Name of scheduled snapshots (the files' prefix)")
	s.S3.AddFlags(fs, "etcd-s3")
}
