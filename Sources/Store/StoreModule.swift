// Store: placeholder until the module lands.
enum StoreModule {}
