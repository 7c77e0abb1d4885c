package protocol

// Tiny formatting helpers so String methods stay free of fmt.

func itoa(v uint64) string {
	if v == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}

const hexDigits = "0123456789abcdef"

func hex8(v uint8) string { return string([]byte{hexDigits[v>>4], hexDigits[v&15]}) }

func hex16(v uint16) string { return hex8(uint8(v>>8)) + hex8(uint8(v)) }
