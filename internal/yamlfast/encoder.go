package yamlfast

import (
	"reflect"
	"unsafe"

	goyaml "go.yaml.in/yaml/v3"
)

// encoderQueue locates the event queue of go.yaml.in/yaml/v3's emitter inside an Encoder.
// The emitter appends every event to the queue and never reuses the space of the events it
// has written, so one Encoder over a file of many documents keeps reallocating a queue of
// every event of the file (tens of MB for a thousand resources). Between two documents
// every event is written, and ResetEncoderQueue empties the queue so its space is reused;
// the output does not change. If the library's layout is not the expected one, nothing is
// reset (and TestEncoderQueue_libraryLayoutIsTheExpectedOne fails).
var encoderQueue = func() (q struct {
	ok                    bool
	encoder, events, head uintptr
}) {
	f, ok := reflect.TypeOf(goyaml.Encoder{}).FieldByName("encoder")
	if !ok || f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
		return q
	}
	em, ok := f.Type.Elem().FieldByName("emitter")
	if !ok || em.Type.Kind() != reflect.Struct {
		return q
	}
	ev, ok1 := em.Type.FieldByName("events")
	hd, ok2 := em.Type.FieldByName("events_head")
	if !ok1 || !ok2 || ev.Type.Kind() != reflect.Slice || hd.Type.Kind() != reflect.Int {
		return q
	}
	q.ok, q.encoder, q.events, q.head = true, f.Offset, em.Offset+ev.Offset, em.Offset+hd.Offset
	return q
}()

// ResetEncoderQueue empties e's event queue when every queued event has been written, so
// that an Encoder writing many documents reuses the queue's space instead of growing it
// with every document (see encoderQueue). Call it between two Encode calls; it changes
// nothing in the output. (kyaml's yaml.Encoder is the same type.)
func ResetEncoderQueue(e *goyaml.Encoder) {
	if !encoderQueue.ok {
		return
	}
	enc := *(*unsafe.Pointer)(unsafe.Add(unsafe.Pointer(e), encoderQueue.encoder)) //nolint:gosec // G103: audited; the offsets come from reflection and encoderQueue.ok guards them (see encoderQueue)
	if enc == nil {
		return
	}
	queue := (*struct {
		data     unsafe.Pointer
		len, cap int
	})(unsafe.Add(enc, encoderQueue.events))
	head := (*int)(unsafe.Add(enc, encoderQueue.head))
	if *head == queue.len {
		queue.len, *head = 0, 0
	}
}
