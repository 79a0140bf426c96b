"""Agent kinds, in the order of the results' ``agent_kind`` dim."""

AGENT_KINDS = ["lender", "leveraged_trader", "market_maker", "liquidator", "arbitrageur",
               "redeemer", "vault_owner", "keeper",
               "holder", "perp_trader",
               "option_trader", "delta_hedger", "vol_arbitrageur"]
