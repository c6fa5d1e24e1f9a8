"""Pure math utilities: answer extraction, verification (Math-Verify in a
killable process pool), the Appendix B.3 reward, and pass@k.  No torch here."""
