// medic-test-child: a helper process for tests (see main.swift).
print("ok")
