package yamlfast

import (
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/errors"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/kio/kioutil"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// ReadNodes is kio.ByteReader.Read with kpt's reader settings (DisableUnwrapping,
// PreserveSeqIndent, WrapBareSeqNode) and the path annotations set to rel. It produces the
// same nodes, annotations and errors, with the annotations set directly rather than through
// kyaml's filters.
func ReadNodes(data []byte, rel string) ([]*yaml.RNode, error) {
	values, err := splitDocuments(strings.ReplaceAll(string(data), "\r\n", "\n"))
	if err != nil {
		return nil, errors.Wrap(err)
	}
	var output []*yaml.RNode
	index := 0
	for i := range values {
		// the split eats the tail '\n' of every document but the last
		if i != len(values)-1 {
			values[i] += "\n"
		}
		node, err := decodeDocument(values[i], index, rel)
		if err == io.EOF {
			continue
		}
		if err != nil {
			return nil, errors.Wrap(err)
		}
		if yaml.IsMissingOrNull(node) {
			continue
		}
		output = append(output, node)
		index++
	}
	return output, nil
}

// yamlSeparator is kyaml's document separator: a line starting with ---.
var yamlSeparator = regexp.MustCompile(`\n---.*\n`)

// splitDocuments is kio's splitDocuments.
func splitDocuments(s string) ([]string, error) {
	docs := make([]string, 0)
	if len(s) > 0 {
		prev := 0
		for _, loc := range yamlSeparator.FindAllStringIndex(s, -1) {
			separator := s[loc[0]:loc[1]]
			trimmed := strings.TrimSpace(separator[4:])
			if len(trimmed) > 0 && trimmed[0] != '#' {
				return nil, errors.Errorf("invalid document separator: %s", strings.TrimSpace(separator))
			}
			docs = append(docs, s[prev:loc[0]])
			prev = loc[1]
		}
		docs = append(docs, s[prev:])
	}
	return docs, nil
}

// decodeDocument is kio.ByteReader.decode with kpt's settings.
func decodeDocument(originalYAML string, index int, rel string) (*yaml.RNode, error) {
	node := &yaml.Node{}
	if err := yaml.NewDecoder(strings.NewReader(originalYAML)).Decode(node); err == io.EOF {
		return nil, io.EOF
	} else if err != nil {
		return nil, errors.WrapPrefixf(err, "MalformedYAMLError")
	}
	if yaml.IsYNodeEmptyDoc(node) {
		return nil, nil
	}
	n := yaml.NewRNode(node)
	if node.Kind == yaml.DocumentNode && len(node.Content) > 0 && node.Content[0] != nil && node.Content[0].Kind == yaml.SequenceNode {
		wrapped := yaml.NewRNode(&yaml.Node{Kind: yaml.MappingNode})
		_ = wrapped.PipeE(yaml.SetField(yaml.BareSeqNodeWrappingKey, n))
		n = wrapped
	}
	if err := CopyLegacyAnnotations(n); err != nil {
		return nil, err
	}
	i := strconv.Itoa(index)
	// in the order of their keys, as the reader sets them
	for _, a := range [...][2]string{
		{kioutil.LegacyIndexAnnotation, i},
		{kioutil.LegacyPathAnnotation, rel},
		{kioutil.IndexAnnotation, i},
		{kioutil.PathAnnotation, rel},
		{kioutil.SeqIndentAnnotation, yaml.DeriveSeqIndentStyle(originalYAML)},
	} {
		if err := SetAnnotation(n, a[0], a[1]); err != nil {
			return nil, errors.Wrap(err)
		}
	}
	return n, nil
}

// WriteNodes is kio.ByteWriter{ClearAnnotations: clear}.Write, except that it edits the
// nodes (removing the reader's annotations) instead of copies: the caller is done with them.
func WriteNodes(w io.Writer, nodes []*yaml.RNode, clear ...string) error {
	if len(nodes) == 1 {
		if p, _ := FileAnnotations(nodes[0]); p != "" {
			for _, glob := range kio.JSONMatch {
				if ok, _ := filepath.Match(glob, filepath.Base(p)); ok {
					return kio.ByteWriter{Writer: w, ClearAnnotations: clear}.Write(nodes)
				}
			}
		}
	}
	seqIndents := make([]string, len(nodes))
	for i, n := range nodes {
		seqIndents[i], _ = Annotation(n, kioutil.SeqIndentAnnotation)
	}
	for _, n := range nodes {
		if err := ClearAnnotations(n, kioutil.IndexAnnotation, kioutil.LegacyIndexAnnotation, kioutil.SeqIndentAnnotation); err != nil {
			return errors.Wrap(err)
		}
		if err := ClearAnnotations(n, clear...); err != nil {
			return errors.Wrap(err)
		}
		if err := ClearEmptyAnnotations(n); err != nil {
			return err
		}
	}
	encoder := yaml.NewEncoder(w)
	defer encoder.Close()
	for i, n := range nodes {
		if seqIndents[i] == string(yaml.WideSequenceStyle) {
			encoder.DefaultSeqIndent()
		} else {
			encoder.CompactSeqIndent()
		}
		if err := encoder.Encode(unwrapBareSequence(n.Document())); err != nil {
			return errors.Wrap(err)
		}
		ResetEncoderQueue(encoder)
	}
	return nil
}

// unwrapBareSequence is kio's upWrapBareSequenceNode.
func unwrapBareSequence(node *yaml.Node) *yaml.Node {
	seq, err := yaml.NewRNode(node).Pipe(yaml.Lookup(yaml.BareSeqNodeWrappingKey))
	if err == nil && !seq.IsNilOrEmpty() {
		return seq.YNode()
	}
	return node
}
