// MedicHost: placeholder until the module lands.
enum MedicHostModule {}
