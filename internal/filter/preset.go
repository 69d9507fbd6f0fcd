package filter

// maxSensitiveName is the longest normalized name of the sensitive preset.
const maxSensitiveName = len("socialsecuritynumber")

// sensitiveName reports whether a member name is one the "sensitive"
// preset removes: after lower-casing ASCII letters and dropping '_', '-',
// '.' and spaces, it is one of the names below. Names with other
// non-ASCII-letter runes never match: the list is ASCII.
func sensitiveName(name []byte) bool {
	if len(name) < 3 || len(name) > 2*maxSensitiveName {
		return false
	}
	var buf [maxSensitiveName]byte
	n := 0
	for _, c := range name {
		switch {
		case c == '_' || c == '-' || c == '.' || c == ' ':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		default:
			return false
		}
		if n == len(buf) {
			return false
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "password", "passwd", "pwd", "passphrase",
		"secret", "clientsecret", "apisecret", "secretkey", "secretaccesskey",
		"token", "accesstoken", "refreshtoken", "idtoken", "authtoken", "bearertoken", "sessiontoken",
		"apikey", "xapikey", "privatekey",
		"ssn", "socialsecuritynumber",
		"cardnumber", "creditcard", "creditcardnumber", "ccnumber", "pan", "cvv", "cvc", "cvv2", "cvc2",
		"pin", "otp",
		"authorization", "cookie", "setcookie", "sessionid":
		return true
	}
	return false
}
