// TestSupport: placeholder until the module lands.
enum TestSupportModule {}
