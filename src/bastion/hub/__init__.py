"""The hub (modelled on Europol's PERCI): carries signed removal orders from authorities to contact points."""
