package cli

func ignoreHangup() {}
