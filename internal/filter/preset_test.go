package filter

import "testing"

func TestSensitiveName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"password", true},
		{"Password", true},
		{"PASSWORD", true},
		{"pass_word", true},
		{"user.password", false}, // normalizes to userpassword
		{"api_key", true},
		{"API-Key", true},
		{"x-api-key", true},
		{"apiKey", true},
		{"access_token", true},
		{"refreshToken", true},
		{"id token", true},
		{"client_secret", true},
		{"credit_card_number", true},
		{"card-number", true},
		{"CVV2", true},
		{"Set-Cookie", true},
		{"session_id", true},
		{"social_security_number", true},
		{"private_key", true},
		{"pan", true},
		{"pin", true},
		{"ssn", true},
		{"otp", true},
		{"tokens", false},
		{"token_type", false},
		{"username", false},
		{"spinner", false},
		{"", false},
		{"pw", false},
		{"passwörd", false},
		{"p_a_s_s_w_o_r_d_______________________", true},
		{"socialsecuritynumberx", false},
	}
	for _, tt := range tests {
		if got := sensitiveName([]byte(tt.name)); got != tt.want {
			t.Errorf("sensitiveName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
