print("medic-echo")
