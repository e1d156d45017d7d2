"""Landing → Bronze, exactly once per delivered file version (R1)."""
