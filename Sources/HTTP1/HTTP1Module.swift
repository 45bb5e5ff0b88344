// HTTP1: placeholder until the module lands.
enum HTTP1Module {}
