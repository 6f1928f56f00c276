package conflicts

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	kpov1 "kpo.dev/kpo/api/v1alpha1"
	"kpo.dev/kpo/internal/merge"
)

func conflict(file, name string, path ...string) merge.Conflict {
	ref := merge.FieldRef{File: file, APIVersion: "v1", Kind: "ConfigMap", Name: name, Path: path}
	return merge.Conflict{File: file, Resource: "v1 ConfigMap " + name, Field: strings.Join(path, "."), Ref: ref, Local: "medium", Upstream: "large"}
}

func TestID_isStableAndDependsOnWhereTheConflictIs(t *testing.T) {
	g := NewWithT(t)
	a := conflict("app.yaml", "app", "data", "size").Ref
	g.Expect(ID(a)).To(HaveLen(10))
	g.Expect(ID(a)).To(Equal(ID(conflict("app.yaml", "app", "data", "size").Ref)))
	for _, other := range []merge.FieldRef{
		conflict("b.yaml", "app", "data", "size").Ref,
		conflict("app.yaml", "other", "data", "size").Ref,
		conflict("app.yaml", "app", "data", "color").Ref,
		conflict("app.yaml", "app", "data.size").Ref, // path elements are not joined ambiguously
	} {
		g.Expect(ID(other)).NotTo(Equal(ID(a)), "%+v", other)
	}
}

func TestFromMerge_refusesWhatCannotBeRecorded(t *testing.T) {
	tests := []struct {
		name    string
		in      []merge.Conflict
		wantErr bool
	}{
		{"one", []merge.Conflict{conflict("a.yaml", "a", "data", "x")}, false},
		{"too many", func() []merge.Conflict {
			var cs []merge.Conflict
			for i := 0; i <= kpov1.MaxRecordedConflicts; i++ {
				cs = append(cs, conflict("a.yaml", "a", "data", strings.Repeat("k", i+1)))
			}
			return cs
		}(), true},
		{"value too large", func() []merge.Conflict {
			c := conflict("a.yaml", "a", "data", "x")
			c.Local = strings.Repeat("v", maxValue+1)
			return []merge.Conflict{c}
		}(), true},
		{"whole resource", []merge.Conflict{conflict("a.yaml", "a")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := FromMerge(tt.in)
			if tt.wantErr {
				g.Expect(err).To(MatchError(ErrTooLarge))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(HaveLen(len(tt.in)))
		})
	}
}

func TestFromHistory_readsTheNewestConflictSetAndTheResolutionsAfterIt(t *testing.T) {
	g := NewWithT(t)
	records, err := FromMerge([]merge.Conflict{
		conflict("app.yaml", "app", "data", "size"), conflict("app.yaml", "app", "data", "color"), conflict("app.yaml", "app", "data", "shape")})
	g.Expect(err).NotTo(HaveOccurred())
	size, color, shape := records[0].ID, records[1].ID, records[2].ID
	start := "Upgrade app\n\nKpo-Draft: uid\n" + Trailers(records) + "kpt:{}\n"
	older, _ := FromMerge([]merge.Conflict{conflict("old.yaml", "old", "data", "x")})

	st := FromHistory([]string{
		"Edit app\n\n" + ResolvedTrailers(map[string]string{color: kpov1.ConflictEdited}) + "kpt:{}\n",
		"Edit app\n\nkpt:{}\n",
		"Resolve\n\n" + ResolvedTrailers(map[string]string{size: kpov1.ConflictUpstream, "unknown": kpov1.ConflictLocal}) + "kpt:{}\n",
		start,
		"Rebase\n\n" + Trailers(older) + ResolvedTrailers(map[string]string{older[0].ID: kpov1.ConflictLocal}), // before the newest set: ignored
	})
	g.Expect(st.Records).To(Equal(records))
	g.Expect(st.Resolutions).To(Equal(map[string]string{size: kpov1.ConflictUpstream, color: kpov1.ConflictEdited}))
	g.Expect(st.Unresolved()).To(ConsistOf(records[2]))
	g.Expect(Summary(st.Unresolved())).To(Equal("1 conflict(s) unresolved: " + shape + " (app.yaml ConfigMap app data.shape)"))

	status := st.Status()
	g.Expect(status).To(HaveLen(3))
	g.Expect(status[0]).To(Equal(kpov1.MergeConflict{ID: size, File: "app.yaml", APIVersion: "v1", Kind: "ConfigMap", Name: "app",
		Field: "data.size", Local: "medium", Upstream: "large", Resolution: kpov1.ConflictUpstream}))

	g.Expect(FromHistory([]string{"Edit\n\nkpt:{}\n", "Init\n\nkpt:{}\n"}).Records).To(BeEmpty())
	g.Expect(FromHistory([]string{"Rebase\n\n" + Trailers(nil), start}).Records).To(BeEmpty(), "a clean rebase ends the earlier conflicts")
	g.Expect(FromHistory(nil).Status()).To(BeNil())
}

func TestStatus_truncatesValues(t *testing.T) {
	g := NewWithT(t)
	c := conflict("a.yaml", "a", "data", "x")
	c.Local = strings.Repeat("é", 300)
	records, err := FromMerge([]merge.Conflict{c})
	g.Expect(err).NotTo(HaveOccurred())
	got := State{Records: records}.Status()[0].Local
	g.Expect(len(got)).To(BeNumerically("<=", shownValue))
	g.Expect(got).To(HaveSuffix("é..."), "cut on a rune boundary")
}

func TestParseChoices_acceptsOnlyKnownIdsAndLocalOrUpstream(t *testing.T) {
	records, _ := FromMerge([]merge.Conflict{conflict("a.yaml", "a", "data", "x"), conflict("a.yaml", "a", "data", "y")})
	x, y := records[0].ID, records[1].ID
	st := State{Records: records, Resolutions: map[string]string{y: kpov1.ConflictEdited}}
	tests := []struct {
		annotation string
		want       map[string]string
		wantErr    string
	}{
		{`{"` + x + `":"upstream"}`, map[string]string{x: "upstream"}, ""},
		{`{"` + x + `":"local","` + y + `":"upstream"}`, map[string]string{x: "local"}, ""}, // y resolved already: skipped
		{`{}`, map[string]string{}, ""},
		{`not json`, nil, "must be a JSON object"},
		{`null`, nil, "must be a JSON object"},
		{`["` + x + `"]`, nil, "must be a JSON object"},
		{`{"` + x + `":1}`, nil, "must be a JSON object"},
		{`{"` + x + `":"theirs"}`, nil, `choice "theirs" is neither`},
		{`{"0000000000":"local"}`, nil, `"0000000000" is not a conflict of this draft`},
		{`{"a":"` + strings.Repeat("x", maxAnnotation) + `"}`, nil, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.annotation[:min(len(tt.annotation), 30)], func(t *testing.T) {
			g := NewWithT(t)
			got, err := st.ParseChoices(tt.annotation)
			if tt.wantErr != "" {
				g.Expect(err).To(MatchError(ErrInvalidChoice))
				g.Expect(err.Error()).To(ContainSubstring(tt.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tt.want))
		})
	}
}

func TestEditedBy_resolvesOnlyConflictsWhoseFieldChanged(t *testing.T) {
	g := NewWithT(t)
	records, _ := FromMerge([]merge.Conflict{conflict("app.yaml", "app", "data", "size"), conflict("app.yaml", "app", "data", "color")})
	before := map[string][]byte{"app.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  size: large\n  color: red\n")}
	after := map[string][]byte{"app.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  size: huge\n  color: red\n  other: x\n")}
	g.Expect(State{Records: records}.EditedBy(before, after)).To(Equal(map[string]string{records[0].ID: kpov1.ConflictEdited}))
}
