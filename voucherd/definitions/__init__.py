"""What a project defines: campaigns, vouchers and their Redis state, promotions, validation rules,
categories, stacking rules, metadata schemas, and the definitions version the hot path watches.

May import: voucherd.platform and engine."""
