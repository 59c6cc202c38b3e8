//go:build linux

package boot

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"time"
	"unsafe"
)

// Linux input event constants (linux/input-event-codes.h).
const (
	evKey    = 0x01
	keyPower = 116
)

// inputEventSize is sizeof(struct input_event): a struct timeval (two longs)
// then type u16, code u16, value s32.
var inputEventSize = int(2*unsafe.Sizeof(uintptr(0))) + 8

// WatchPowerButton calls press once when any input device reports the power
// key going down: QEMU's system_powerdown (ACPI power button on x86) and
// Virtualization.framework's RequestStop arrive this way. Devices are
// /dev/input/event*, created by evdev (loaded from the initramfs) for the
// ACPI "Power Button" and, on arm64 virt, gpio-keys.
func WatchPowerButton(log *Logger, press func()) {
	var devs []string
	// The button driver may register shortly after module load.
	for i := 0; i < 20 && len(devs) == 0; i++ {
		devs, _ = filepath.Glob("/dev/input/event*")
		if len(devs) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	sort.Strings(devs)
	if len(devs) == 0 {
		log.Printf("no input devices: the hypervisor's power button will not be seen")
		return
	}
	pressed := make(chan struct{}, 1)
	for _, d := range devs {
		f, err := os.Open(d)
		if err != nil {
			continue
		}
		go func(f *os.File) {
			defer f.Close()
			buf := make([]byte, inputEventSize*16)
			for {
				n, err := f.Read(buf)
				if err != nil {
					return
				}
				for off := 0; off+inputEventSize <= n; off += inputEventSize {
					ev := buf[off+inputEventSize-8 : off+inputEventSize]
					typ := binary.NativeEndian.Uint16(ev[0:2])
					code := binary.NativeEndian.Uint16(ev[2:4])
					value := int32(binary.NativeEndian.Uint32(ev[4:8]))
					if typ == evKey && code == keyPower && value == 1 {
						select {
						case pressed <- struct{}{}:
						default:
						}
					}
				}
			}
		}(f)
	}
	go func() {
		<-pressed
		log.Printf("power button pressed: shutting down")
		press()
	}()
}
