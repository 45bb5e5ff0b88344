// Protocol: placeholder until the module lands.
enum ProtocolModule {}
