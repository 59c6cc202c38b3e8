// Package protocol defines the host↔guest wire protocol spoken between the VM
// host (supervisor) and the guest agent (PID 1 inside every sandbox VM).
//
// The full specification lives in PROTOCOL.md beside this file; this package
// is its only implementation of the framing and message types, shared by both
// ends. It has no dependencies beyond the standard library so that the guest
// binary stays small and the types stay easy to read.
package protocol

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Version is the protocol version this build speaks. Bump it on any
// incompatible change to frames or messages and document the change in
// PROTOCOL.md.
const Version = 1

// ChannelName is the name of the virtio-serial port the guest agent serves on
// (found under /sys/class/virtio-ports/*/name), and VsockPort is the vsock
// port it listens on when the driver offers vsock instead.
const (
	ChannelName = "moat.agent.0"
	VsockPort   = 1024
)

// MaxPayload bounds one frame's payload. Data frames larger than this are
// split by the sender.
const MaxPayload = 1 << 20

// FrameType identifies a frame. Values are stable across versions; new types
// may be added, and a receiver rejects types it does not know.
type FrameType uint8

const (
	// Session setup (first frames on a "hello" stream).
	FrameHello FrameType = 0x01 // host→guest: Hello
	FrameReady FrameType = 0x02 // guest→host: Ready

	// Exec (a stream per process).
	FrameExec     FrameType = 0x10 // host→guest: ExecRequest
	FrameStarted  FrameType = 0x11 // guest→host: Started
	FrameStdin    FrameType = 0x12 // host→guest: raw bytes
	FrameStdinEOF FrameType = 0x13 // host→guest: empty
	FrameStdout   FrameType = 0x14 // guest→host: raw bytes (the PTY's output when TTY)
	FrameStderr   FrameType = 0x15 // guest→host: raw bytes (never sent when TTY)
	FrameResize   FrameType = 0x16 // host→guest: WindowSize
	FrameSignal   FrameType = 0x17 // host→guest: Signal
	FrameExit     FrameType = 0x18 // guest→host: ExitStatus, always the last frame

	// Power.
	FrameShutdown    FrameType = 0x20 // host→guest: Shutdown
	FrameShutdownAck FrameType = 0x21 // guest→host: empty; the guest then powers off

	// FrameError ends a stream with an Error when a request cannot be served.
	FrameError FrameType = 0x7f
)

var frameNames = map[FrameType]string{
	FrameHello: "hello", FrameReady: "ready",
	FrameExec: "exec", FrameStarted: "started", FrameStdin: "stdin", FrameStdinEOF: "stdin-eof",
	FrameStdout: "stdout", FrameStderr: "stderr", FrameResize: "resize", FrameSignal: "signal",
	FrameExit: "exit", FrameShutdown: "shutdown", FrameShutdownAck: "shutdown-ack", FrameError: "error",
}

func (t FrameType) String() string {
	if n, ok := frameNames[t]; ok {
		return n
	}
	return fmt.Sprintf("frame(0x%02x)", uint8(t))
}

// Known reports whether t is a frame type of this version.
func (t FrameType) Known() bool { _, ok := frameNames[t]; return ok }

// Frame is one unit on a stream: a type byte, a 4-byte big-endian payload
// length, then the payload.
type Frame struct {
	Type    FrameType
	Payload []byte
}

const headerLen = 5

// ErrFrameTooLarge is returned for a frame whose declared length exceeds MaxPayload.
var ErrFrameTooLarge = errors.New("protocol: frame payload exceeds 1 MiB")

// WriteFrame writes one frame. It is not safe for concurrent use on the same
// writer; callers serialise writes (see Conn).
func WriteFrame(w io.Writer, t FrameType, payload []byte) error {
	if len(payload) > MaxPayload {
		return ErrFrameTooLarge
	}
	buf := make([]byte, headerLen+len(payload))
	buf[0] = byte(t)
	binary.BigEndian.PutUint32(buf[1:headerLen], uint32(len(payload)))
	copy(buf[headerLen:], payload)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame. It returns io.EOF only on a clean end of stream
// between frames, and io.ErrUnexpectedEOF for a truncated frame.
func ReadFrame(r io.Reader) (Frame, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxPayload {
		return Frame{}, ErrFrameTooLarge
	}
	f := Frame{Type: FrameType(hdr[0])}
	if !f.Type.Known() {
		return Frame{}, fmt.Errorf("protocol: unknown frame type 0x%02x", hdr[0])
	}
	if n > 0 {
		f.Payload = make([]byte, n)
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
	}
	return f, nil
}

// WriteJSON writes a frame whose payload is v encoded as JSON.
func WriteJSON(w io.Writer, t FrameType, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFrame(w, t, b)
}

// Decode unmarshals a JSON frame payload into v, naming the frame on error.
func (f Frame) Decode(v any) error {
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return fmt.Errorf("protocol: bad %s payload: %w", f.Type, err)
	}
	return nil
}

// WriteData writes b as one or more data frames of type t, splitting at MaxPayload.
func WriteData(w io.Writer, t FrameType, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), MaxPayload)
		if err := WriteFrame(w, t, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// Writer writes whole frames to one stream from several goroutines (stdin
// pump, resize, signals on one side; stdout, stderr, exit on the other): a
// frame is never interleaved with another.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter serialises frames written to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Frame writes one frame.
func (w *Writer) Frame(t FrameType, payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WriteFrame(w.w, t, payload)
}

// Data writes b as data frames of type t, split at MaxPayload.
func (w *Writer) Data(t FrameType, b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WriteData(w.w, t, b)
}

// JSON writes a frame whose payload is v as JSON.
func (w *Writer) JSON(t FrameType, v any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WriteJSON(w.w, t, v)
}

// Stream is an io.Writer whose every Write becomes data frames of type t
// (FrameStdout, FrameStderr, FrameStdin) on w.
func (w *Writer) Stream(t FrameType) io.Writer { return streamWriter{w, t} }

type streamWriter struct {
	w *Writer
	t FrameType
}

func (s streamWriter) Write(b []byte) (int, error) {
	if err := s.w.Data(s.t, b); err != nil {
		return 0, err
	}
	return len(b), nil
}
