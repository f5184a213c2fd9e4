package netpol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// TableName is k3ha's nftables table (family ip) diverting new connections
// of the selected pods to the policy evaluator.
const TableName = "k3ha-network-policy"

// QueueNum is the NFQUEUE the evaluator listens on.
const QueueNum = 100

const setName = "selected"

var table = &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}

// WriteRules replaces the table in one transaction: the selected pods'
// addresses and the rules sending their new connections to the queue.
// Without a listener on the queue, such packets are dropped: a policy
// stays enforced while k3ha restarts.
func WriteRules(selected []netip.Addr) error {
	nft, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network policy rules: %w", err)
	}
	// add + delete + add: replaces whatever an earlier run left.
	nft.AddTable(table)
	nft.DelTable(table)
	nft.AddTable(table)
	set := &nftables.Set{Table: table, Name: setName, KeyType: nftables.TypeIPAddr}
	elems := make([]nftables.SetElement, 0, len(selected))
	for _, a := range selected {
		elems = append(elems, nftables.SetElement{Key: a.AsSlice()})
	}
	if err := nft.AddSet(set, elems); err != nil {
		return fmt.Errorf("network policy rules: %w", err)
	}
	// Before source NAT, so that the evaluator sees the pod's own address;
	// after destination NAT, so that a Service's traffic shows its endpoint.
	chain := nft.AddChain(&nftables.Chain{
		Name: "postrouting", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityRef(*nftables.ChainPriorityNATSource - 5),
	})
	rule := func(exprs ...expr.Any) { nft.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: exprs}) }
	accept := &expr.Verdict{Kind: expr.VerdictAccept}
	// The node's own root processes (the kubelet's probes) are not pods.
	rule(&expr.Meta{Key: expr.MetaKeySKUID, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}}, accept)
	// Only a connection's first packet is judged.
	rule(&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}}, accept)
	for _, offset := range []uint32{12, 16} { // source, then destination address
		rule(&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Lookup{SourceRegister: 1, SetName: setName, SetID: set.ID},
			queueTarget())
	}
	if err := nft.Flush(); err != nil {
		return fmt.Errorf("network policy rules: write table %s: %w", TableName, err)
	}
	return nil
}

// queueTarget is iptables' NFQUEUE target (revision 3) through nftables'
// compat layer, which kernels without nftables' own queue expression
// (CONFIG_NFT_QUEUE) still have, as every iptables-nft user needs it.
func queueTarget() *expr.Target {
	// struct xt_NFQ_info_v3 { u16 queuenum, queues_total, flags }, padded
	// to 8 bytes as xtables aligns it.
	info := make(xt.Unknown, 8)
	binary.NativeEndian.PutUint16(info[0:], QueueNum)
	binary.NativeEndian.PutUint16(info[2:], 1)
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}

// RemoveRules deletes the table, if there is one: with policies disabled
// nothing may divert traffic to a queue no one reads.
func RemoveRules() error {
	nft, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network policy rules: %w", err)
	}
	nft.AddTable(table)
	nft.DelTable(table)
	if err := nft.Flush(); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("network policy rules: remove table %s: %w", TableName, err)
	}
	return nil
}
