-- When a report's next deadline warning is due (NULL: none left, or the report is filed or
-- withdrawn), so the sweep reads only what is due; and the exact document filed, kept as filed
-- (31 CFR 1020.320(d): a copy of the SAR is kept for five years).
ALTER TABLE sars ADD COLUMN next_warning_at timestamptz;
ALTER TABLE sars ADD COLUMN filed_document text;
-- Reports from before this column: looked at by the next sweep, which sets it right.
UPDATE sars SET next_warning_at = created_at WHERE warnings_sent < 4;
CREATE INDEX sars_next_warning ON sars (next_warning_at) WHERE next_warning_at IS NOT NULL;
-- A continuing or correcting report finds the prior filing by the regulator's or the
-- transmitter's id.
CREATE INDEX sars_bsa_id ON sars (tenant_id, bsa_id) WHERE bsa_id IS NOT NULL;
CREATE INDEX sars_filing_reference ON sars (tenant_id, filing_reference) WHERE filing_reference IS NOT NULL;
