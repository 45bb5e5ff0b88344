// Server: placeholder until the module lands.
enum ServerModule {}
