-- Feed retention: commits older than `keep` go, with their changes; the last commit always stays (a caught-up
-- follower checks that the commit it applied is still there). A follower whose last commit was pruned loads
-- everything again (docs/compute.md, "Change feed"): pruning costs a lagging process a reload, never a wrong answer.
create index feed_commits_committed_at on feed_commits (committed_at);

create function feed_prune(keep interval) returns bigint language plpgsql as $$
declare
    upto bigint;
    gone bigint;
begin
    select max(seq) into upto from feed_commits where committed_at < clock_timestamp() - keep and seq < (select seq from feed_head);
    if upto is null then
        return 0;
    end if;
    delete from feed_changes ch using feed_commits c where c.seq <= upto and ch.txid = c.txid;
    delete from feed_commits where seq <= upto;
    get diagnostics gone = row_count;
    return gone;
end $$;

-- Times every reader can hold: finite, and within years 1 to 9999 (a process keeps them as Unix milliseconds).
alter table triples add constraint triples_times_in_range check (
    isfinite(valid_from) and valid_from >= '0001-01-01 00:00:00+00' and valid_from < '9999-01-01 00:00:00+00'
    and (valid_to is null or (isfinite(valid_to) and valid_to < '9999-01-01 00:00:00+00')));

-- One dimension per embedding model: every process indexes a model's vectors in one index.
create table embedding_models (
    model text primary key,
    dims integer not null check (dims between 1 and 4096),
    unique (model, dims)
);
insert into embedding_models (model, dims) select model, min(dims) from embeddings group by model;
alter table embeddings add constraint embeddings_model_dims foreign key (model, dims) references embedding_models (model, dims);

-- An update that changes an embedding's key (entity or model) reaches the feed as the old key's delete and the
-- new key's write: a follower holding the old key's vector drops it.
create or replace function feed_capture() returns trigger language plpgsql as $$
begin
    -- Nested: PL/pgSQL would read old.entity of a triples row, which has none, in a single condition.
    if tg_op = 'UPDATE' and tg_table_name = 'embeddings' then
        if to_jsonb(old) -> 'entity' is distinct from to_jsonb(new) -> 'entity' or to_jsonb(old) -> 'model' is distinct from to_jsonb(new) -> 'model' then
            insert into feed_changes (txid, relation, op, image) values (pg_current_xact_id(), tg_table_name, 'DELETE', to_jsonb(old));
            insert into feed_changes (txid, relation, op, image) values (pg_current_xact_id(), tg_table_name, 'INSERT', to_jsonb(new));
            return null;
        end if;
    end if;
    insert into feed_changes (txid, relation, op, image)
    values (pg_current_xact_id(), tg_table_name, tg_op,
            case tg_op when 'DELETE' then to_jsonb(old) when 'TRUNCATE' then null else to_jsonb(new) end);
    if tg_op = 'TRUNCATE' then
        perform feed_register();
    end if;
    return null;
end $$;
