package datastore

// Kind is the datastore a server runs on, decided once at start.
type Kind int

const (
	SQLite       Kind = iota // embedded SQLite through kine (the default)
	External                 // --datastore-endpoint, through kine (or straight to an external etcd)
	EtcdNew                  // embedded etcd, first member of a new cluster (--cluster-init)
	EtcdJoin                 // embedded etcd, joining the cluster of --server
	EtcdExisting             // embedded etcd from data already on disk
)

func (k Kind) String() string {
	return [...]string{"sqlite", "external", "etcd (new cluster)", "etcd (join)", "etcd"}[k]
}

// Etcd reports whether the kind runs embedded etcd.
func (k Kind) Etcd() bool { return k >= EtcdNew }

// Inputs are the facts the choice depends on.
type Inputs struct {
	EtcdData          bool   // an etcd WAL exists in the data dir
	ClusterInit       bool   // --cluster-init
	ServerURL         string // --server
	DatastoreEndpoint string // --datastore-endpoint
}

// Choice is the decision, and which flags it had to ignore.
type Choice struct {
	Kind    Kind
	Ignored []string // flags given but ignored because etcd data exists
}

// Choose applies the rules in their order (spec section 3): etcd data on
// disk wins over every flag; then an explicit endpoint; then --cluster-init
// or --server; else SQLite.
func Choose(in Inputs) Choice {
	if in.EtcdData {
		var ignored []string
		if in.ClusterInit {
			ignored = append(ignored, "--cluster-init")
		}
		if in.ServerURL != "" {
			ignored = append(ignored, "--server")
		}
		if in.DatastoreEndpoint != "" {
			ignored = append(ignored, "--datastore-endpoint")
		}
		return Choice{Kind: EtcdExisting, Ignored: ignored}
	}
	switch {
	case in.DatastoreEndpoint != "":
		return Choice{Kind: External}
	case in.ServerURL != "":
		return Choice{Kind: EtcdJoin}
	case in.ClusterInit:
		return Choice{Kind: EtcdNew}
	}
	return Choice{Kind: SQLite}
}
