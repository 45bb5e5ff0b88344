// TLS: placeholder until the module lands.
enum TLSModule {}
