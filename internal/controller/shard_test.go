package controller_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/controller"
)

func TestShardSelector_acceptsTheShardKeyOnly(t *testing.T) {
	for _, tc := range []struct {
		flag    string
		matches []labels.Set
		misses  []labels.Set
		err     string
	}{
		{flag: "", matches: []labels.Set{{}, {kpov1.ShardLabel: "a"}}},
		{flag: "kpo.dev/shard=a", matches: []labels.Set{{kpov1.ShardLabel: "a"}}, misses: []labels.Set{{}, {kpov1.ShardLabel: "b"}}},
		{flag: "!kpo.dev/shard", matches: []labels.Set{{}, {"team": "web"}}, misses: []labels.Set{{kpov1.ShardLabel: "a"}}},
		{flag: "kpo.dev/shard in (a, b)", matches: []labels.Set{{kpov1.ShardLabel: "b"}}, misses: []labels.Set{{}, {kpov1.ShardLabel: "c"}}},
		{flag: "team=web", err: "select Repositories by the shard key label kpo.dev/shard only, not by team"},
		{flag: "kpo.dev/shard=a,team=web", err: "not by team"},
		{flag: "kpo.dev/shard in (a", err: `watch label selector "kpo.dev/shard in (a"`},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			g := NewWithT(t)
			sel, err := controller.ShardSelector(tc.flag)
			if tc.err != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tc.err)))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			for _, set := range tc.matches {
				g.Expect(sel.Matches(set)).To(BeTrue(), "%v", set)
			}
			for _, set := range tc.misses {
				g.Expect(sel.Matches(set)).To(BeFalse(), "%v", set)
			}
		})
	}
}

func TestLeaderElectionID_onePerShard(t *testing.T) {
	g := NewWithT(t)
	id := func(flag string) string {
		sel, err := controller.ShardSelector(flag)
		g.Expect(err).NotTo(HaveOccurred())
		return controller.LeaderElectionID(sel)
	}
	g.Expect(id("")).To(Equal("kpo-manager.kpo.dev"), "an unsharded manager keeps the Lease it always had")
	g.Expect(id("!kpo.dev/shard")).To(Equal("kpo-manager.kpo.dev"), "and so does the main instance, which serves the same Repositories")
	ids := map[string]bool{}
	for _, flag := range []string{"", "kpo.dev/shard=a", "kpo.dev/shard=b", "kpo.dev/shard in (a,b)"} {
		ids[id(flag)] = true
		g.Expect(id(flag)).To(MatchRegexp(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`), "a Lease name")
	}
	g.Expect(ids).To(HaveLen(4), "every shard elects its own leader")
	g.Expect(id("kpo.dev/shard in (b, a)")).To(Equal(id("kpo.dev/shard in (a,b)")), "the replicas of one shard agree whatever the spelling")
}

func TestShardCacheOptions_selectsTheShardsObjects(t *testing.T) {
	g := NewWithT(t)
	g.Expect(controller.ShardCacheOptions(labels.Everything()).ByObject).To(HaveLen(len(controller.CacheOptions().ByObject)),
		"without sharding, the cache is CacheOptions'")

	sel, err := controller.ShardSelector("kpo.dev/shard=a")
	g.Expect(err).NotTo(HaveOccurred())
	selectors := map[string]labels.Selector{}
	for obj, by := range controller.ShardCacheOptions(sel).ByObject {
		switch obj.(type) {
		case *corev1.ConfigMap:
			selectors["ConfigMap"] = by.Label
		case *kpov1.Repository:
			selectors["Repository"] = by.Label
		case *kpov1.PackageRevision:
			selectors["PackageRevision"] = by.Label
		}
	}
	g.Expect(selectors).To(HaveLen(3), "PackageDrafts carry no shard label: every manager caches them all")
	content := labels.Set{kpov1.ContentLabel: "true", kpov1.ShardLabel: "a"}
	g.Expect(selectors["ConfigMap"].Matches(content)).To(BeTrue())
	g.Expect(selectors["ConfigMap"].Matches(labels.Set{kpov1.ContentLabel: "true", kpov1.ShardLabel: "b"})).To(BeFalse())
	g.Expect(selectors["ConfigMap"].Matches(labels.Set{kpov1.ShardLabel: "a"})).To(BeFalse(), "never every ConfigMap of the cluster")
	for _, kind := range []string{"Repository", "PackageRevision"} {
		g.Expect(selectors[kind].Matches(labels.Set{kpov1.ShardLabel: "a"})).To(BeTrue(), kind)
		g.Expect(selectors[kind].Matches(labels.Set{})).To(BeFalse(), kind)
	}
}
