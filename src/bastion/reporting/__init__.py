"""Child-safety reports: NCMEC CyberTipline and the EU Centre, drafted from confirmed material, sent once."""
