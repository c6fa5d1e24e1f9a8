"""Pure algorithm pieces of SOAR: teacher-output parsing, RLOO, rewards, promotion."""
