package yamlfast

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	. "github.com/onsi/gomega"
	goyaml "go.yaml.in/yaml/v3"
)

// queueOf reads, through reflection alone, the length and capacity of e's event queue and
// its head: what ResetEncoderQueue reaches with unsafe offsets.
func queueOf(e *goyaml.Encoder) (length, capacity, head int) {
	em := reflect.ValueOf(e).Elem().FieldByName("encoder").Elem().FieldByName("emitter")
	events := em.FieldByName("events")
	return events.Len(), events.Cap(), int(em.FieldByName("events_head").Int())
}

// TestEncoderQueue_libraryLayoutIsTheExpectedOne guards ResetEncoderQueue: it fails when
// go.yaml.in/yaml/v3's Encoder no longer has the layout the unsafe offsets assume (an
// upgrade changed it: fix encoderQueue, or drop the reset), and when the reset no longer
// empties the very queue reflection finds.
func TestEncoderQueue_libraryLayoutIsTheExpectedOne(t *testing.T) {
	g := NewWithT(t)
	g.Expect(encoderQueue.ok).To(BeTrue(), "the yaml.v3 encoder has the expected layout")

	var out bytes.Buffer
	e := goyaml.NewEncoder(&out)
	g.Expect(e.Encode(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]string{"a": "b"}})).To(Succeed())
	length, _, head := queueOf(e)
	g.Expect(length).To(BeNumerically(">", 0), "events are queued")
	g.Expect(head).To(Equal(length), "every queued event is written at the end of a document")

	ResetEncoderQueue(e)
	length, _, head = queueOf(e)
	g.Expect(length).To(BeZero(), "the queue is empty after the reset")
	g.Expect(head).To(BeZero())
	g.Expect(e.Close()).To(Succeed())
}

func TestResetEncoderQueue_keepsTheOutputAndReusesTheQueue(t *testing.T) {
	g := NewWithT(t)
	encode := func(reset bool) (string, []int) {
		var out bytes.Buffer
		e := goyaml.NewEncoder(&out)
		var capacities []int
		for i := range 200 {
			doc := &goyaml.Node{}
			g.Expect(doc.Encode(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": fmt.Sprintf("cm-%d", i)}})).To(Succeed())
			g.Expect(e.Encode(doc)).To(Succeed())
			if reset {
				ResetEncoderQueue(e)
			}
			_, capacity, _ := queueOf(e)
			capacities = append(capacities, capacity)
		}
		g.Expect(e.Close()).To(Succeed())
		return out.String(), capacities
	}
	want, grown := encode(false)
	got, reused := encode(true)
	g.Expect(got).To(Equal(want))
	g.Expect(reused[len(reused)-1]).To(Equal(reused[0]), "the queue keeps the capacity of one document")
	g.Expect(grown[len(grown)-1]).To(BeNumerically(">", reused[0]), "without the reset the queue grows")
}
