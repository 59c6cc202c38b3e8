package daemon

func privateUmask() func() { return func() {} }
