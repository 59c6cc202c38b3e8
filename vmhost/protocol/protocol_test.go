package protocol

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, FrameExec, ExecRequest{Argv: []string{"echo", "hi"}, TTY: true, Size: WindowSize{Rows: 24, Cols: 80}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, FrameStdinEOF, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteData(&buf, FrameStdout, []byte("out")); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFrame(&buf)
	if err != nil || f.Type != FrameExec {
		t.Fatalf("first frame: %v %v", f.Type, err)
	}
	var req ExecRequest
	if err := f.Decode(&req); err != nil {
		t.Fatal(err)
	}
	if req.Argv[1] != "hi" || !req.TTY || req.Size.Cols != 80 {
		t.Fatalf("decoded %+v", req)
	}
	f, err = ReadFrame(&buf)
	if err != nil || f.Type != FrameStdinEOF || len(f.Payload) != 0 {
		t.Fatalf("eof frame: %+v %v", f, err)
	}
	f, err = ReadFrame(&buf)
	if err != nil || string(f.Payload) != "out" {
		t.Fatalf("data frame: %+v %v", f, err)
	}
	if _, err := ReadFrame(&buf); err != io.EOF {
		t.Fatalf("clean end: %v, want io.EOF", err)
	}
}

func TestWireFormatIsStable(t *testing.T) {
	var buf bytes.Buffer
	WriteFrame(&buf, FrameSignal, []byte(`{"signal":9}`))
	want := append([]byte{0x17, 0, 0, 0, 12}, `{"signal":9}`...)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("wire bytes % x, want % x", buf.Bytes(), want)
	}
}

func TestWriteDataSplitsLargePayloads(t *testing.T) {
	var buf bytes.Buffer
	big := bytes.Repeat([]byte("x"), 2*MaxPayload+10)
	if err := WriteData(&buf, FrameStdout, big); err != nil {
		t.Fatal(err)
	}
	var got []byte
	n := 0
	for {
		f, err := ReadFrame(&buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Payload) > MaxPayload {
			t.Fatalf("frame of %d bytes", len(f.Payload))
		}
		got = append(got, f.Payload...)
		n++
	}
	if n != 3 || !bytes.Equal(got, big) {
		t.Fatalf("%d frames, %d bytes", n, len(got))
	}
	if err := WriteFrame(&buf, FrameStdout, big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized WriteFrame: %v", err)
	}
}

func TestReadFrameRejectsBadInput(t *testing.T) {
	// Truncated payload.
	if _, err := ReadFrame(bytes.NewReader([]byte{byte(FrameStdout), 0, 0, 0, 5, 'a'})); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated payload: %v", err)
	}
	// Truncated header.
	if _, err := ReadFrame(bytes.NewReader([]byte{byte(FrameStdout), 0})); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated header: %v", err)
	}
	// Declared length over the limit is refused before allocating.
	hdr := []byte{byte(FrameStdout), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], MaxPayload+1)
	if _, err := ReadFrame(bytes.NewReader(hdr)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	// Unknown type.
	if _, err := ReadFrame(bytes.NewReader([]byte{0x55, 0, 0, 0, 0})); err == nil || !strings.Contains(err.Error(), "unknown frame type 0x55") {
		t.Errorf("unknown type: %v", err)
	}
	// Bad JSON names the frame.
	f := Frame{Type: FrameReady, Payload: []byte("{nope")}
	if err := f.Decode(&Ready{}); err == nil || !strings.Contains(err.Error(), "ready") {
		t.Errorf("bad json: %v", err)
	}
}

func TestVersioning(t *testing.T) {
	if err := CheckVersion(Version); err != nil {
		t.Fatal(err)
	}
	err := CheckVersion(Version + 1)
	if err == nil || !strings.Contains(err.Error(), "rebuild the guest assets") {
		t.Fatalf("mismatch: %v", err)
	}
	// Unknown JSON fields are ignored (adding optional fields is compatible).
	f := Frame{Type: FrameHello, Payload: []byte(`{"version":1,"future_field":true}`)}
	var h Hello
	if err := f.Decode(&h); err != nil || h.Version != 1 {
		t.Fatalf("forward-compatible decode: %+v %v", h, err)
	}
}

func TestFrameNames(t *testing.T) {
	if FrameExit.String() != "exit" || FrameType(0x99).String() != "frame(0x99)" {
		t.Fatal(FrameExit.String(), FrameType(0x99).String())
	}
}

func TestWriterKeepsFramesWhole(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			for j := 0; j < 50; j++ {
				w.Stream(FrameStdout).Write(bytes.Repeat([]byte("x"), 1000))
				w.JSON(FrameResize, WindowSize{Rows: 1, Cols: 2})
			}
			done <- true
		}()
	}
	for i := 0; i < 8; i++ {
		<-done
	}
	n := 0
	for {
		f, err := ReadFrame(&buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if f.Type == FrameStdout && len(f.Payload) != 1000 {
			t.Fatalf("torn data frame: %d bytes", len(f.Payload))
		}
		n++
	}
	if n != 800 {
		t.Fatalf("%d frames, want 800", n)
	}
}
