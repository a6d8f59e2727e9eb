import { describe, expect, it } from 'vitest'
import { foreignKeyInTwo, keyAsIndex } from '../../src/core/restore/schema-graph'

describe('keyAsIndex: a primary or unique key built as its index, then made a constraint from it', () => {
  it('splits the plain forms the schema capture writes, keeping quoted names exactly', () => {
    expect(keyAsIndex('ALTER TABLE public.users ADD CONSTRAINT users_pkey PRIMARY KEY (id);', new Set())).toEqual({
      table: 'public.users',
      index: 'CREATE UNIQUE INDEX users_pkey ON public.users USING btree (id);',
      attach: 'ALTER TABLE public.users ADD CONSTRAINT users_pkey PRIMARY KEY USING INDEX users_pkey;',
    })
    expect(
      keyAsIndex('ALTER TABLE ONLY "my schema"."Audit ""Event""" ADD CONSTRAINT "Audit_key" UNIQUE ("teamId", "userId");', new Set()),
    ).toEqual({
      table: 'my schema.Audit "Event"',
      index: 'CREATE UNIQUE INDEX "Audit_key" ON "my schema"."Audit ""Event""" USING btree ("teamId", "userId");',
      attach: 'ALTER TABLE "my schema"."Audit ""Event""" ADD CONSTRAINT "Audit_key" UNIQUE USING INDEX "Audit_key";',
    })
  })

  it('leaves whole what USING INDEX cannot say the same way, and partitioned tables', () => {
    for (const st of [
      'ALTER TABLE public.t ADD CONSTRAINT t_key UNIQUE NULLS NOT DISTINCT (a);',
      'ALTER TABLE public.t ADD CONSTRAINT t_key UNIQUE (a) DEFERRABLE INITIALLY DEFERRED;',
      'ALTER TABLE public.t ADD CONSTRAINT t_pkey PRIMARY KEY (a) INCLUDE (b);',
      'ALTER TABLE public.t ADD CONSTRAINT t_pkey PRIMARY KEY (a) WITH (fillfactor=70);',
      'ALTER TABLE public.t ADD CONSTRAINT t_check CHECK ((a > 0));',
      'ALTER TABLE public.t ADD CONSTRAINT t_excl EXCLUDE USING gist (r WITH &&);',
      'ALTER TABLE public.t ADD CONSTRAINT t_fkey FOREIGN KEY (a) REFERENCES public.u(id);',
      'CREATE INDEX t_a ON public.t USING btree (a);',
    ])
      expect(keyAsIndex(st, new Set())).toBeNull()
    expect(keyAsIndex('ALTER TABLE public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, at);', new Set(['public.events']))).toBeNull()
  })
})

describe('foreignKeyInTwo: a foreign key added NOT VALID, then validated', () => {
  it('splits the form the schema capture writes, keeping quoted names exactly', () => {
    expect(
      foreignKeyInTwo(
        'ALTER TABLE public."Answer" ADD CONSTRAINT "Answer_userId_fkey" FOREIGN KEY ("userId") REFERENCES public."User"(id) ON DELETE CASCADE;',
      ),
    ).toEqual({
      add: 'ALTER TABLE public."Answer" ADD CONSTRAINT "Answer_userId_fkey" FOREIGN KEY ("userId") REFERENCES public."User"(id) ON DELETE CASCADE NOT VALID;',
      validate: 'ALTER TABLE public."Answer" VALIDATE CONSTRAINT "Answer_userId_fkey";',
    })
  })

  it('leaves alone what is no foreign key or is NOT VALID already', () => {
    expect(foreignKeyInTwo('ALTER TABLE public.t ADD CONSTRAINT t_fkey FOREIGN KEY (a) REFERENCES public.u(id) NOT VALID;')).toBeNull()
    expect(foreignKeyInTwo('ALTER TABLE public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);')).toBeNull()
    expect(foreignKeyInTwo('CREATE TRIGGER x AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION f();')).toBeNull()
  })
})
