print("medic")
